"""Admin commands for accounts, on the same DATA_DIR as a running server: ``profiles``,
``activity`` and ``prompt``."""

from __future__ import annotations

import argparse
import sys

from proxy.accounts import activity, profiles, retention
from proxy.accounts.models import AccountsContext
from proxy.cli.common import command, group, when
from proxy.errors import NotFound


def _existing(ctx: AccountsContext, name: str) -> None:
    if profiles.by_name(ctx, name) is None:
        raise NotFound(f"no profile named {name!r}")


def profiles_add(ctx: AccountsContext, args: argparse.Namespace) -> int:
    key = profiles.add(ctx, args.name, args.key)
    print(f"created profile {args.name!r}; its auth key (shown only now, stored only as a hash):",
          file=sys.stderr)
    print(key)
    return 0


def profiles_list(ctx: AccountsContext, args: argparse.Namespace) -> int:
    rows = profiles.listing(ctx)
    if not rows:
        print("no profiles")
    for profile in rows:
        keys = sorted(profiles.provider_keys(ctx, profile.username))
        custom = profiles.prompt(ctx, profile.username) is not None
        print(f"{profile.username}\tcreated {when(profile.created_at)}\t"
              f"{retention.usage(ctx, profile.username)} bytes\tprompt {'custom' if custom else 'default'}\t"
              f"provider keys: {', '.join(k.removesuffix('_api_key') for k in keys) or 'none'}")
    return 0


def profiles_delete(ctx: AccountsContext, args: argparse.Namespace) -> int:
    if not profiles.delete(ctx, args.name):
        raise NotFound(f"no profile named {args.name!r}")
    print(f"deleted profile {args.name!r}, its frames, activity, prompt and keys")
    return 0


def profiles_rotate(ctx: AccountsContext, args: argparse.Namespace) -> int:
    key = profiles.rotate_key(ctx, args.name)
    print(f"new auth key for {args.name!r} (shown only now; the old key and its sessions stop working):",
          file=sys.stderr)
    print(key)
    return 0


def show_activity(ctx: AccountsContext, args: argparse.Namespace) -> int:
    _existing(ctx, args.name)
    report = activity.report(ctx, args.name, args.recent)
    print(f"activity of {args.name}: {report['frames']['count']} stored frames, "
          f"{report['frames']['bytes']} bytes; usage {retention.usage(ctx, args.name)} bytes")
    for kind, row in report["kinds"].items():
        print(f"  {kind:<10} {row['count']:>7}  first {when(row['first'])}  last {when(row['last'])}")
    if report["answers"]:
        print("  answers returned, by the provider that gave them:")
    for provider, row in report["answers"].items():
        repeated = f" ({row['repeated']} repeated from memory, no call)" if row["repeated"] else ""
        print(f"    {provider:<12} {row['answers']:>7}{repeated}")
    print(f"  provider calls: {report['provider_calls']} (every provider asked, the judge included)")
    for row in report["recent"]:
        details = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("at", "kind"))
        print(f"  {when(row['at'])} {row['kind']} {details}".rstrip())
    return 0


def prompt(ctx: AccountsContext, args: argparse.Namespace) -> int:
    _existing(ctx, args.name)
    if args.text or args.default:
        profiles.set_prompt(ctx, args.name, None if args.default else " ".join(args.text))
    custom = profiles.prompt(ctx, args.name)
    print(f"{args.name} ({'custom' if custom else 'default'} prompt): "
          f"{custom or ctx.settings.default_prompt}")
    return 0


def register_profiles(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands = group(sub, "profiles", "add, list, delete profiles and rotate their keys")
    add = commands.add_parser("add", help="create a profile and print its auth key once")
    add.add_argument("name")
    add.add_argument("--key", help="use this key instead of generating a strong one")
    add.set_defaults(func=command(profiles_add))
    commands.add_parser("list", help="every profile and its usage").set_defaults(func=command(profiles_list))
    delete = commands.add_parser("delete", help="delete a profile and all its data and files")
    delete.add_argument("name")
    delete.set_defaults(func=command(profiles_delete))
    rotate = commands.add_parser("rotate-key", help="replace a profile's auth key and print the new one")
    rotate.add_argument("name")
    rotate.set_defaults(func=command(profiles_rotate))


def register_activity(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("activity", help="usage report of a profile")
    parser.add_argument("name")
    parser.add_argument("--recent", type=int, default=10, help="recent events to show")
    parser.set_defaults(func=command(show_activity))


def register_prompt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("prompt", help="show or set a profile's custom prompt")
    parser.add_argument("name")
    parser.add_argument("text", nargs="*", default=None, help="the new prompt; omit to show it")
    parser.add_argument("--default", action="store_true", help="revert to the default prompt")
    parser.set_defaults(func=command(prompt))

