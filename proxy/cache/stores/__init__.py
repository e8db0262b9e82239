"""Byte stores behind one interface (``base.ByteStore``): the embedded ``disk`` store (diskcache
under DATA_DIR, with its ``presence`` map that spares most misses a lookup), its Redis twin
(``redis``), and ``failover``: Redis while it answers, the disk store while it does not, with the
``replay`` journal of what Redis may lack (made during an outage, or unconfirmed by a replica)."""
