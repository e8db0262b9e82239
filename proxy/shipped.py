"""The files Iris ships beside its code: the page templates and the prompt templates.

A checkout (and an editable install) has them at the repository root, beside ``proxy/``. A wheel
installs them as data files under ``<prefix>/share/iris-proxy`` (``[tool.setuptools.data-files]``
in pyproject.toml), where the prefix is the one whose ``lib/.../site-packages`` holds ``proxy/``:
a virtualenv, ``~/.local`` for ``pip install --user``, ``/usr/local``, or a ``--prefix``."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHARE = Path("share", "iris-proxy")


def roots() -> list[Path]:
    """Where shipped files are looked for, in order: the checkout, then each prefix above."""
    return [PACKAGE.parent, *(ancestor / SHARE for ancestor in PACKAGE.parents[1:5])]


def shipped(name: str) -> Path | None:
    """The shipped file or folder ``name``, or ``None`` when this installation lacks it."""
    return next((root / name for root in roots() if (root / name).exists()), None)
