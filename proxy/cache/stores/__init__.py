"""Byte stores behind one interface (``base.ByteStore``): the embedded ``disk`` store (diskcache
under DATA_DIR, with its ``presence`` map that spares most misses a lookup, and large values as
files it can hand out open, ``base.ValueFile``), its Redis twin (``redis``, no files), and
``failover``: Redis while it answers, the disk store while it does not, with the ``replay``
journal of what Redis may lack (made during an outage, or unconfirmed by a replica)."""
