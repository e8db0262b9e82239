"""``iris-proxy sign PATH [--expires SECONDS]``: an image URL signed with the server's signing key
(IMAGE_SIGNING_KEYS, or the one the server generated under the same DATA_DIR; where there is none,
it says so and exits 1 rather than make up a key no server knows), printed as one line on standard
output, for pages that must not carry the access key."""

from __future__ import annotations

import argparse
import sys

from proxy.config import Settings
from proxy.errors import ConfigError, IrisError
from proxy.imagegen.sign import signed_url
from proxy.security.credentials import SIGNING_KEY_FILE, signing_keys
from proxy.security.signing import Signer


def cmd_sign(args: argparse.Namespace, settings: Settings) -> int:
    server = settings.server
    key_file = server.data_dir / "secrets" / SIGNING_KEY_FILE
    if not server.signing_keys and not key_file.exists():
        print(f"iris: there is no signing key in DATA_DIR {server.data_dir.resolve()} ({key_file} does not "
              "exist): run the command with the server's DATA_DIR or IMAGE_SIGNING_KEYS, or start the "
              "server there first", file=sys.stderr)
        return 1
    try:
        signer = Signer(signing_keys(server))
        url = signed_url(signer, args.url, settings.image, expires=args.expires)
    except ConfigError as exc:
        print(f"iris: configuration error: {exc}", file=sys.stderr)
        return 2
    except IrisError as exc:
        print(f"iris: {exc.message}", file=sys.stderr)
        return 1
    print(url)
    return 0


def register_sign(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("sign", help="print an image URL signed, for pages without the access key")
    parser.add_argument("url", help="the path and query to sign, such as "
                                    '"/prompt/a%%20red%%20apple?width=512&seed=7" (or a whole URL)')
    parser.add_argument("--expires", type=int, metavar="SECONDS",
                        help="the URL stops working after this many seconds")
    parser.set_defaults(func=cmd_sign)
