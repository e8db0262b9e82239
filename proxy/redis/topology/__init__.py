"""The shapes a Redis deployment takes, behind ``base.Topology``: one server (``standalone``),
a master and its replicas watched by Sentinel (``sentinel``, which follows the master when it
moves), and Redis Cluster (``cluster``); ``registry`` picks one from the settings."""
