"""The cache: a byte store interface (diskcache, or Redis when instances share), the image
entries kept in it, a per-process memory front, and single flight over the store."""
