"""Admin commands for the blacklist, on the same DATA_DIR as a running server (which picks a
change up within BLACKLIST_REFRESH)."""

from __future__ import annotations

import argparse

from proxy.accounts.models import AccountsContext
from proxy.cli.common import command, group, when
from proxy.errors import NotFound
from proxy.security import blacklist


def blacklist_add(ctx: AccountsContext, args: argparse.Namespace) -> int:
    network = blacklist.add(ctx, args.address, args.reason, args.seconds)
    print(f"blocked {network}" + (f" for {args.seconds:g} s" if args.seconds else ""))
    return 0


def blacklist_remove(ctx: AccountsContext, args: argparse.Namespace) -> int:
    if not blacklist.remove(ctx, args.address):
        raise NotFound(f"{args.address} is not on the blacklist")
    print(f"unblocked {blacklist.normalize(args.address)}")
    return 0


def blacklist_list(ctx: AccountsContext, args: argparse.Namespace) -> int:
    entries = blacklist.entries(ctx)
    if not entries:
        print("the blacklist is empty")
    for entry in entries:
        until = f"until {when(entry.expires_at)}" if entry.expires_at else "permanent"
        print(f"{entry.network}\t{until}\tsince {when(entry.created_at)}\t{entry.reason}".rstrip())
    return 0


def register_blacklist(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands = group(sub, "blacklist", "block addresses and CIDR ranges")
    add = commands.add_parser("add", help="block an address or CIDR range")
    add.add_argument("address")
    add.add_argument("--reason", default="admin", help="a note shown by list")
    add.add_argument("--seconds", type=float, help="block only for this long")
    add.set_defaults(func=command(blacklist_add))
    remove = commands.add_parser("remove", help="unblock an address or range")
    remove.add_argument("address")
    remove.set_defaults(func=command(blacklist_remove))
    commands.add_parser("list", help="the blocked addresses").set_defaults(func=command(blacklist_list))
