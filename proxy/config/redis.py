"""Scale-out: with REDIS_URL, several Iris instances share cache, locks, limits and signals.

``REDIS_URL`` names one of three topologies (``RedisSettings.topology``):

- ``standalone``: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or ``unix://path``,
  read by redis-py itself.
- ``sentinel``: ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://`` for TLS), with ``?sentinel_password=`` (and ``sentinel_username=``) when
  the sentinels want other credentials than the master. redis-py does not read this form, and the
  standard URL parser refuses a list of hosts, so it is split here.
- ``cluster`` (``REDIS_CLUSTER=true``): one or more node URLs separated by commas
  (``redis://:pw@h1:7000,h2:7001``: a node without a scheme takes the first one's scheme and
  credentials); any reachable node tells the client the rest. Database 0 only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.config.env import Env
from proxy.errors import ConfigError

STANDALONE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
REDIS_PORT = 6379
SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username")
FORMS = ("redis://host:6379/0 (rediss:// for TLS, unix:///path), "
         "redis+sentinel://host:26379,host:26379/service/0, or node URLs with REDIS_CLUSTER=true")

Address = tuple[str, int]


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = field(default=None, repr=False)  # may hold a password
    topology: str = "standalone"  # standalone | sentinel | cluster (proxy.redis.topology.TOPOLOGIES)
    nodes: tuple[Address, ...] = ()  # the sentinels, or the cluster nodes to start from
    service: str = ""  # sentinel: the name the sentinels monitor the master under
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    prefix: str = "iris:"
    cache_ttl: float = 30 * 86400.0
    timeout: float = 1.0
    retry_interval: float = 2.0
    wait_replicas: int = 0  # replicas that must confirm a cache write (WAIT) before it counts as safe
    wait_timeout: float = 0.5

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def public_url(self) -> str | None:
        """Scheme, hosts, ports, service and database: never a user name or password."""
        if self.url is None:
            return None
        if self.topology == "sentinel":
            scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
            return f"{scheme}://{_hosts(self.nodes)}/{self.service}/{self.db}"
        if self.topology == "cluster":
            return f"{'rediss' if self.tls else 'redis'}://{_hosts(self.nodes)}"
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def load_redis(env: Env) -> RedisSettings:
    url = env.optional("REDIS_URL")
    cluster = env.flag("REDIS_CLUSTER", False)
    common = RedisSettings(
        prefix=env.text("REDIS_PREFIX", "iris:"),
        cache_ttl=env.number("REDIS_CACHE_TTL", 30 * 86400.0, lo=0.0),
        timeout=env.number("REDIS_TIMEOUT", 1.0, lo=0.05, hi=60.0),
        retry_interval=env.number("REDIS_RETRY_INTERVAL", 2.0, lo=0.05, hi=600.0),
    )
    if url is None:
        if cluster:
            raise ConfigError("REDIS_CLUSTER", "is true but REDIS_URL is not set",
                              "set REDIS_URL to one or more cluster node URLs, comma-separated")
        return common
    if cluster:
        settings = _cluster(url, common)
    elif url.partition("://")[0].lower() in SENTINEL_SCHEMES:
        settings = _sentinel(url, common)
    else:
        settings = _standalone(url, common)
    return _with_wait(env, settings)


def _standalone(url: str, common: RedisSettings) -> RedisSettings:
    if "," in url.partition("://")[2].partition("/")[0].rpartition("@")[2]:
        raise ConfigError("REDIS_URL", "names several hosts",
                          "for a cluster set REDIS_CLUSTER=true; for Sentinel write redis+sentinel://...")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ConfigError("REDIS_URL", f"is not a valid URL ({exc})", f"write {FORMS}") from None
    if parts.scheme not in STANDALONE_SCHEMES:
        raise ConfigError("REDIS_URL", "is not a Redis URL", f"write {FORMS}")
    return replace(common, url=url)


def _sentinel(url: str, common: RedisSettings) -> RedisSettings:
    """``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db][?sentinel_password=]``"""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    nodes = _addresses(hostlist, SENTINEL_PORT)
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise ConfigError("REDIS_URL", "names no Sentinel service",
                          "write redis+sentinel://host:26379,host:26379/SERVICE/0 (the name in "
                          "'sentinel monitor SERVICE ...')")
    db = _database(parts[1]) if len(parts) > 1 else 0
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - set(SENTINEL_OPTIONS))
    if unknown:
        raise ConfigError("REDIS_URL", f"has unknown options {', '.join(unknown)}",
                          f"a Sentinel URL takes only {' and '.join(SENTINEL_OPTIONS)}")
    return replace(common, url=url, topology="sentinel", nodes=nodes, service=parts[0], db=db,
                   username=username, password=password,
                   sentinel_username=_option(options, "sentinel_username"),
                   sentinel_password=_option(options, "sentinel_password"),
                   tls=scheme.lower().startswith("rediss"))


def _cluster(url: str, common: RedisSettings) -> RedisSettings:
    """Node URLs, comma-separated; a node without a scheme takes the first node's scheme and
    credentials (``redis://:pw@h1:7000,h2:7001,h3:7002``)."""
    items = [item.strip() for item in url.split(",") if item.strip()]
    first = urlsplit(items[0]) if "://" in items[0] else None
    if first is None or first.scheme not in ("redis", "rediss"):
        raise ConfigError("REDIS_URL", "is not a list of cluster node URLs",
                          "with REDIS_CLUSTER=true write redis://host:7000,host:7001 (or rediss://)")
    nodes: list[Address] = []
    for item in items:
        parts = urlsplit(item if "://" in item else f"{first.scheme}://{item}")
        if parts.scheme != first.scheme:
            raise ConfigError("REDIS_URL", "mixes schemes between cluster nodes",
                              "use redis:// (or rediss://) for every node")
        if parts.path.strip("/") not in ("", "0"):
            raise ConfigError("REDIS_URL", "names a database other than 0",
                              "a Redis Cluster has only database 0: drop the /db from the URL")
        nodes.append(_address(parts.netloc.rpartition("@")[2], REDIS_PORT))
    userinfo, at, _ = first.netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    return replace(common, url=url, topology="cluster", nodes=tuple(nodes), username=username,
                   password=password, tls=first.scheme == "rediss")


def _with_wait(env: Env, settings: RedisSettings) -> RedisSettings:
    """How many replicas confirm a cache write: 1 behind Sentinel (the replica it promotes has
    every image Iris counted as written), 0 elsewhere."""
    default = 1 if settings.topology == "sentinel" else 0
    replicas = env.integer("REDIS_WAIT_REPLICAS", default, lo=0, hi=16)
    if replicas and settings.topology == "cluster":
        raise ConfigError("REDIS_WAIT_REPLICAS", "cannot be used with REDIS_CLUSTER",
                          "set it to 0: the cluster client cannot wait for the replicas of one write")
    wait_timeout = env.number("REDIS_WAIT_TIMEOUT", settings.timeout / 2, lo=0.01, hi=60.0)
    if replicas and wait_timeout >= settings.timeout:
        raise ConfigError("REDIS_WAIT_TIMEOUT", "is not below REDIS_TIMEOUT",
                          "keep it under REDIS_TIMEOUT, or the wait itself counts as an outage")
    return replace(settings, wait_replicas=replicas, wait_timeout=wait_timeout)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if colon else None


def _addresses(hostlist: str, default_port: int) -> tuple[Address, ...]:
    items = [item.strip() for item in hostlist.split(",") if item.strip()]
    if not items:
        raise ConfigError("REDIS_URL", "names no Sentinel host", "write redis+sentinel://host:26379/SERVICE/0")
    return tuple(_address(item, default_port) for item in items)


def _address(item: str, default_port: int) -> Address:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if item.startswith("["):
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host or not (port == "" or (port.isdigit() and 0 < int(port) < 65536)):
        raise ConfigError("REDIS_URL", f"has a bad host:port {item!r}",
                          "write host:port, e.g. 10.0.0.5:26379")
    return host, int(port) if port else default_port


def _database(text: str) -> int:
    if not text.isdigit():
        raise ConfigError("REDIS_URL", f"has a database {text!r} that is not a number",
                          "end the URL with /SERVICE/0 (or another database number)")
    return int(text)


def _option(options: dict[str, list[str]], name: str) -> str | None:
    values = options.get(name)
    return values[-1] if values and values[-1] else None


def _hosts(nodes: tuple[Address, ...]) -> str:
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in nodes)
