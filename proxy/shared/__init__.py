"""Scale-out over Redis: what several Iris instances share (cache, locks, limits, sessions,
signals), each part falling back to its local twin while Redis is unreachable."""
