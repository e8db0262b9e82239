"""iris-proxy: runs the Iris server (the default) and manages its data.

Every command reads the same settings (the environment over .env) and the same DATA_DIR as the
server, so it works next to a running server. Whatever they create there (the cache and its
images, the databases, frames, secrets) is readable by Iris's user alone: files 0600,
directories 0700 (``PRIVATE``, the process's umask)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from proxy import __version__
from proxy.cli.accounts import register_activity, register_profiles, register_prompt
from proxy.cli.blacklist import register_blacklist
from proxy.cli.health import register_health
from proxy.cli.sign import register_sign
from proxy.config import Settings, gather_environment, load_settings
from proxy.errors import ConfigError
from proxy.security.credentials import resolve_secrets
from proxy.server import serve

Command = Callable[[argparse.Namespace, Settings], int]
TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")
PRIVATE = 0o077  # the umask: files 0600, directories 0700 (the processes started from here inherit it)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.host:
        settings = settings.with_server(host=args.host)
    if args.port is not None:
        settings = settings.with_server(port=args.port)
    if args.workers is not None:
        settings = settings.with_server(workers=args.workers)
    secrets = resolve_secrets(settings.server)
    for line in secrets.describe():
        print(f"iris: {line}", file=sys.stderr)
    if not settings.image.backends:
        print("iris: BACKEND_API_URLS is empty; Pollinations is the image pool", file=sys.stderr)
    return serve(settings, secrets)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iris-proxy", description=__doc__.splitlines()[0],
                                     epilog="Settings come from the environment and from .env in the "
                                            "working directory; see .env.example.")
    parser.add_argument("--version", action="version", version=f"iris-proxy {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (the default)")
    serve.add_argument("--host", help="listen address (HOST)")
    serve.add_argument("--port", type=int, help="listen port (PORT)")
    serve.add_argument("--workers", type=int, help="server processes sharing the port (WORKERS)")
    serve.set_defaults(func=cmd_serve)
    for register in (register_health, register_profiles, register_activity, register_blacklist,
                     register_prompt, register_sign):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE)
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in TOP_LEVEL_OPTIONS):
        args_list.insert(0, "serve")
    args = build_parser().parse_args(args_list)
    try:
        settings = load_settings(gather_environment())
    except ConfigError as exc:
        print(f"iris: configuration error: {exc}", file=sys.stderr)
        return int(getattr(args, "config_error_status", 2))
    return args.func(args, settings)
