"""What only Redis does, for several Iris instances sharing one Redis (REDIS_URL): the errors that
mean an outage and the client's options (``client``), the shape of the deployment (``topology``:
one server, Sentinel or Cluster), whether Redis is reachable (``health``), signals between
instances (``bus``), the process's handle on them all (``shared``), and the base of every Redis
twin (``twin``). The twins themselves live beside their local implementations: the byte
store and generation in ``proxy.cache``, limits and the blacklist signal in ``proxy.security``,
sessions in ``proxy.accounts``, cool-downs in ``proxy.upstream``, dedup in ``proxy.vision.dedup``."""
