"""Admin commands on the same DATA_DIR as a running server: ``profiles``, ``activity``,
``blacklist`` and ``prompt``. A server picks blacklist changes up within BLACKLIST_REFRESH."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from proxy.config import Settings
from proxy.errors import ConfigError, IrisError, NotFound
from proxy.store import activity, blacklist, profiles, retention
from proxy.store.database import open_context
from proxy.store.models import StoreContext

Action = Callable[[StoreContext, argparse.Namespace], int]


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _existing(ctx: StoreContext, name: str) -> None:
    if profiles.by_name(ctx, name) is None:
        raise NotFound(f"no profile named {name!r}")


def profiles_add(ctx: StoreContext, args: argparse.Namespace) -> int:
    key = profiles.add(ctx, args.name, args.key)
    print(f"created profile {args.name!r}; its auth key (shown only now, stored only as a hash):",
          file=sys.stderr)
    print(key)
    return 0


def profiles_list(ctx: StoreContext, args: argparse.Namespace) -> int:
    rows = profiles.listing(ctx)
    if not rows:
        print("no profiles")
    for profile in rows:
        keys = sorted(profiles.provider_keys(ctx, profile.username))
        custom = profiles.prompt(ctx, profile.username) is not None
        print(f"{profile.username}\tcreated {_when(profile.created_at)}\t"
              f"{retention.usage(ctx, profile.username)} bytes\tprompt {'custom' if custom else 'default'}\t"
              f"provider keys: {', '.join(k.removesuffix('_api_key') for k in keys) or 'none'}")
    return 0


def profiles_delete(ctx: StoreContext, args: argparse.Namespace) -> int:
    if not profiles.delete(ctx, args.name):
        raise NotFound(f"no profile named {args.name!r}")
    print(f"deleted profile {args.name!r}, its frames, activity, prompt and keys")
    return 0


def profiles_rotate(ctx: StoreContext, args: argparse.Namespace) -> int:
    key = profiles.rotate_key(ctx, args.name)
    print(f"new auth key for {args.name!r} (shown only now; the old key and its sessions stop working):",
          file=sys.stderr)
    print(key)
    return 0


def show_activity(ctx: StoreContext, args: argparse.Namespace) -> int:
    _existing(ctx, args.name)
    report = activity.report(ctx, args.name, args.recent)
    print(f"activity of {args.name}: {report['frames']['count']} stored frames, "
          f"{report['frames']['bytes']} bytes; usage {retention.usage(ctx, args.name)} bytes")
    for kind, row in report["kinds"].items():
        print(f"  {kind:<10} {row['count']:>7}  first {_when(row['first'])}  last {_when(row['last'])}")
    for provider, count in report["providers"].items():
        print(f"  provider {provider}: {count}")
    for row in report["recent"]:
        details = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("at", "kind"))
        print(f"  {_when(row['at'])} {row['kind']} {details}".rstrip())
    return 0


def blacklist_add(ctx: StoreContext, args: argparse.Namespace) -> int:
    network = blacklist.add(ctx, args.address, args.reason, args.seconds)
    print(f"blocked {network}" + (f" for {args.seconds:g} s" if args.seconds else ""))
    return 0


def blacklist_remove(ctx: StoreContext, args: argparse.Namespace) -> int:
    if not blacklist.remove(ctx, args.address):
        raise NotFound(f"{args.address} is not on the blacklist")
    print(f"unblocked {blacklist.normalize(args.address)}")
    return 0


def blacklist_list(ctx: StoreContext, args: argparse.Namespace) -> int:
    entries = blacklist.entries(ctx)
    if not entries:
        print("the blacklist is empty")
    for entry in entries:
        until = f"until {_when(entry.expires_at)}" if entry.expires_at else "permanent"
        print(f"{entry.network}\t{until}\tsince {_when(entry.created_at)}\t{entry.reason}".rstrip())
    return 0


def prompt(ctx: StoreContext, args: argparse.Namespace) -> int:
    _existing(ctx, args.name)
    if args.text or args.default:
        profiles.set_prompt(ctx, args.name, None if args.default else " ".join(args.text))
    custom = profiles.prompt(ctx, args.name)
    print(f"{args.name} ({'custom' if custom else 'default'} prompt): "
          f"{custom or ctx.settings.default_prompt}")
    return 0


def _command(action: Action) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            ctx = open_context(settings)
        except ConfigError as exc:
            print(f"iris: configuration error: {exc}", file=sys.stderr)
            return 2
        try:
            return action(ctx, args)
        except IrisError as exc:
            print(f"iris: {exc.message}", file=sys.stderr)
            return 1
        finally:
            ctx.conn.close()

    return run


def _group(sub: Any, name: str, help_text: str) -> Any:
    parser = sub.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True)


def register_profiles(sub: argparse._SubParsersAction) -> None:
    group = _group(sub, "profiles", "add, list, delete profiles and rotate their keys")
    add = group.add_parser("add", help="create a profile and print its auth key once")
    add.add_argument("name")
    add.add_argument("--key", help="use this key instead of generating a strong one")
    add.set_defaults(func=_command(profiles_add))
    group.add_parser("list", help="every profile and its usage").set_defaults(func=_command(profiles_list))
    delete = group.add_parser("delete", help="delete a profile and all its data and files")
    delete.add_argument("name")
    delete.set_defaults(func=_command(profiles_delete))
    rotate = group.add_parser("rotate-key", help="replace a profile's auth key and print the new one")
    rotate.add_argument("name")
    rotate.set_defaults(func=_command(profiles_rotate))


def register_activity(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("activity", help="usage report of a profile")
    parser.add_argument("name")
    parser.add_argument("--recent", type=int, default=10, help="recent events to show")
    parser.set_defaults(func=_command(show_activity))


def register_blacklist(sub: argparse._SubParsersAction) -> None:
    group = _group(sub, "blacklist", "block addresses and CIDR ranges")
    add = group.add_parser("add", help="block an address or CIDR range")
    add.add_argument("address")
    add.add_argument("--reason", default="admin", help="a note shown by list")
    add.add_argument("--seconds", type=float, help="block only for this long")
    add.set_defaults(func=_command(blacklist_add))
    remove = group.add_parser("remove", help="unblock an address or range")
    remove.add_argument("address")
    remove.set_defaults(func=_command(blacklist_remove))
    group.add_parser("list", help="the blocked addresses").set_defaults(func=_command(blacklist_list))


def register_prompt(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("prompt", help="show or set a profile's custom prompt")
    parser.add_argument("name")
    parser.add_argument("text", nargs="*", default=None, help="the new prompt; omit to show it")
    parser.add_argument("--default", action="store_true", help="revert to the default prompt")
    parser.set_defaults(func=_command(prompt))


REGISTRARS = [register_profiles, register_activity, register_blacklist, register_prompt]
