"""The topologies by ``RedisSettings.topology`` (read from REDIS_URL and REDIS_CLUSTER)."""

from __future__ import annotations

from collections.abc import Callable

from proxy.config.redis import RedisSettings
from proxy.redis.topology.base import Topology
from proxy.redis.topology.cluster import ClusterTopology
from proxy.redis.topology.sentinel import SentinelTopology
from proxy.redis.topology.standalone import Standalone

TOPOLOGIES: dict[str, Callable[[RedisSettings], Topology]] = {
    "standalone": Standalone,
    "sentinel": SentinelTopology,
    "cluster": ClusterTopology,
}


def open_topology(settings: RedisSettings) -> Topology:
    return TOPOLOGIES[settings.topology](settings)
