"""Real Redis topologies on 127.0.0.1 for the scale-out tests, made of real ``redis-server``
processes in a temp dir (no persistence, free ports, killed with the test process):

- ``SentinelSetup``: a master, its replica and three sentinels (``redis-server FILE --sentinel``;
  a sentinel rewrites its file, so each gets a writable one). About 2.2 s until the sentinels
  have met, which a failover needs (they say hello every 2 s).
- ``ClusterSetup``: three primaries joined by ``redis-cli --cluster create`` (each node's bus
  port given with ``--cluster-port``), about 3 s until every node reports ``cluster_state:ok``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.redis_fakes import die_with_parent, free_port

TOPOLOGIES = ("standalone", "sentinel", "cluster")
# Runs a test on each: the ``redis_topology`` fixture (tests.support.redis_fixtures) names it.
ON_EVERY_TOPOLOGY = pytest.mark.parametrize("redis_topology", TOPOLOGIES, indirect=True)

HOST = "127.0.0.1"
SERVER = ["--bind", HOST, "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
SENTINEL_CONF = """port {port}
bind {host}
dir {dir}
sentinel monitor {service} {host} {master} 2
sentinel down-after-milliseconds {service} 1000
sentinel failover-timeout {service} 3000
sentinel parallel-syncs {service} 1
"""


def wait_until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what} (last error: {last!r})")


def plain(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)


class Processes:
    """redis-server processes by port, started in one temp dir."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.running: dict[int, subprocess.Popen[bytes]] = {}
        self.args: dict[int, list[str]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def start(self, port: int, args: list[str]) -> None:
        log = (self.directory / f"{port}.log").open("ab")
        self.args[port] = args
        self.running[port] = subprocess.Popen(["redis-server", *args], cwd=self.directory, stdout=log,
                                              stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        log.close()
        wait_until(lambda: plain(port).ping(), 10, f"redis-server on port {port}")

    def kill(self, port: int) -> None:
        """kill -9: no goodbye to its replicas, sentinels or cluster peers."""
        proc = self.running.pop(port)
        proc.kill()
        proc.wait(10)

    def restart(self, port: int) -> None:
        self.start(port, self.args[port])

    def stop_all(self) -> None:
        for proc in self.running.values():
            proc.kill()
        for proc in self.running.values():
            proc.wait(10)
        self.running.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


class SentinelSetup:
    def __init__(self, directory: Path, service: str = "iris"):
        self.procs = Processes(directory)
        self.service = service
        self.master = self.replica = 0
        self.sentinels: list[int] = []

    @property
    def url(self) -> str:
        return f"redis+sentinel://{','.join(f'{HOST}:{port}' for port in self.sentinels)}/{self.service}/0"

    def start(self) -> SentinelSetup:
        self.master, self.replica = free_port(), free_port()
        self.procs.start(self.master, ["--port", str(self.master), *SERVER, "--repl-diskless-sync-delay", "0"])
        self.procs.start(self.replica, ["--port", str(self.replica), *SERVER, "--repl-diskless-sync-delay", "0",
                                        "--replicaof", HOST, str(self.master)])
        wait_until(lambda: plain(self.replica).info("replication")["master_link_status"] == "up", 10,
                   "the replica's first sync")
        for _ in range(3):
            port = free_port()
            conf = self.procs.directory / f"sentinel-{port}.conf"
            conf.write_text(SENTINEL_CONF.format(port=port, host=HOST, dir=self.procs.directory,
                                                 service=self.service, master=self.master))
            self.procs.start(port, [str(conf), "--sentinel"])
            self.sentinels.append(port)

        def agreed() -> bool:  # each sentinel knows the replica and the two others
            states = [plain(port).sentinel_master(self.service) for port in self.sentinels]
            return all(int(s["num-slaves"]) == 1 and int(s["num-other-sentinels"]) == 2 for s in states)

        wait_until(agreed, 20, "the sentinels to meet")
        return self

    def master_port(self) -> int:
        """Where the sentinels say the master is now."""
        return int(plain(self.sentinels[0]).sentinel_get_master_addr_by_name(self.service)[1])

    def failover(self) -> int:
        """``SENTINEL FAILOVER``: the replica is promoted while the old master still runs (and takes
        writes until the sentinels demote it). Returns the old master's port."""
        old = self.master_port()
        plain(self.sentinels[0]).execute_command("SENTINEL", "FAILOVER", self.service)
        return old

    def stop(self) -> None:
        self.procs.stop_all()


class ClusterSetup:
    def __init__(self, directory: Path, nodes: int = 3):
        self.procs = Processes(directory)
        self.count = nodes
        self.ports: list[int] = []

    @property
    def url(self) -> str:
        return ",".join(f"redis://{HOST}:{port}" for port in self.ports)

    def start(self, *extra: str) -> ClusterSetup:
        for _ in range(self.count):
            port, bus = free_port(), free_port()
            self.procs.start(port, ["--port", str(port), *SERVER, "--cluster-enabled", "yes",
                                    "--cluster-config-file", f"nodes-{port}.conf",
                                    "--cluster-node-timeout", "2000", "--cluster-port", str(bus), *extra])
            self.ports.append(port)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        wait_until(lambda: all(self.state(port) == "ok" for port in self.ports), 20, "cluster_state:ok")
        return self

    @staticmethod
    def state(port: int) -> str:
        info = plain(port).execute_command("CLUSTER INFO")  # redis-py parses it (or not, by version)
        if isinstance(info, bytes | str):
            text = info.decode() if isinstance(info, bytes) else info
            info = dict(line.split(":", 1) for line in text.split())
        return str(info.get("cluster_state", ""))

    def stop(self) -> None:
        self.procs.stop_all()
