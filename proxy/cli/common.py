"""What every admin command shares: opening the same DATA_DIR as the server, turning Iris's
errors into a message and an exit status, and small formatting helpers."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from proxy.accounts.models import AccountsContext
from proxy.accounts.service import NoAccountsData, open_context
from proxy.config import Settings
from proxy.errors import ConfigError, IrisError

Action = Callable[[AccountsContext, argparse.Namespace], int]


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def command(action: Action) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        print(f"iris: DATA_DIR is {settings.server.data_dir.resolve()}", file=sys.stderr)
        try:
            ctx = open_context(settings, create=False)
        except NoAccountsData as exc:
            print(f"iris: {exc}", file=sys.stderr)
            return 1
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


def group(sub: Any, name: str, help_text: str) -> Any:
    parser = sub.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True)
