"""The cross-process half of single flight: one lock per key, held by the one producing it.
``file``: a byte-range lock on a file, for the workers of one host; ``lease``: a key with an
expiry in the byte store (Redis across hosts, or the disk store where files refuse such locks)."""
