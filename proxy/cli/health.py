"""``iris-proxy health [--url URL]``: asks a running server's ``GET /readyz`` and exits 0 when it
answers 200, 1 otherwise (never 2: container health checks read 2 as reserved). Without --url it
asks the server these settings describe, on loopback when HOST is a wildcard address."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from proxy.config import Settings

TIMEOUT = 5.0
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def readyz_url(settings: Settings) -> str:
    host = WILDCARDS.get(settings.server.host, settings.server.host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.server.port}/readyz"


def health(args: argparse.Namespace, settings: Settings) -> int:
    url = args.url or readyz_url(settings)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"iris: {url} did not answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    if status != 200:
        print(f"iris: {url} answered {status}: not ready", file=sys.stderr)
        return 1
    return 0


def register_health(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("health", help="exit 0 when the server answers GET /readyz with 200, else 1")
    parser.add_argument("--url", type=_http_url, help="the readiness URL (default: this server's /readyz)")
    parser.set_defaults(func=health, config_error_status=1)


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError("write an http:// or https:// URL")
    return text
