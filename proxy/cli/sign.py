"""``iris-proxy sign PATH [--expires SECONDS]``: an image URL signed with the server's signing key
(IMAGE_SIGNING_KEYS, or the one generated under the same DATA_DIR), printed as one line on
standard output, for pages that must not carry the access key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxy.config import Settings
from proxy.errors import ConfigError, IrisError
from proxy.imagegen.sign import signed_url
from proxy.security.credentials import signing_keys
from proxy.security.signing import Signer


def cmd_sign(args: argparse.Namespace, settings: Settings) -> int:
    generated: list[Path] = []
    try:
        signer = Signer(signing_keys(settings.server, generated))
        url = signed_url(signer, args.url, settings.image, expires=args.expires)
    except ConfigError as exc:
        print(f"iris: configuration error: {exc}", file=sys.stderr)
        return 2
    except IrisError as exc:
        print(f"iris: {exc.message}", file=sys.stderr)
        return 1
    for path in generated:
        print(f"iris: generated the signing key; the server uses it too: {path}", file=sys.stderr)
    print(url)
    return 0


def register_sign(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("sign", help="print an image URL signed, for pages without the access key")
    parser.add_argument("url", help="the path and query to sign, such as "
                                    '"/prompt/a%%20red%%20apple?width=512&seed=7" (or a whole URL)')
    parser.add_argument("--expires", type=int, metavar="SECONDS",
                        help="the URL stops working after this many seconds")
    parser.set_defaults(func=cmd_sign)
