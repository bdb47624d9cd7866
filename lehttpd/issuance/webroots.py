"""`--webroot A -d x --webroot B -d y`: each webroot serves the names given after it, as certbot's `-w` does.

argparse keeps no order between two different flags, so both record themselves, in command-line order, into
one list; the mapping is made from it once the names are validated. Names given before any --webroot (or as
positional arguments) go to the last webroot, as certbot does for names no `-w` claimed.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from lehttpd.errors import UsageError

ORDER = "webroot_order"  # the namespace attribute holding [("root", Path) | ("names", str), ...]


class WebrootAction(argparse.Action):
    """--webroot PATH: remembered in order; args.webroot holds the last (and makes the mode webroot)."""

    def __call__(self, parser, namespace, values, option_string=None):
        _order(namespace).append(("root", values))
        setattr(namespace, self.dest, values)


class DomainAction(argparse.Action):
    """-d NAME: appended (as action="append" does), and remembered in order for the webroot map."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])  # default untouched
        _order(namespace).append(("names", values))


def _order(namespace: argparse.Namespace) -> list:
    if getattr(namespace, ORDER, None) is None:
        setattr(namespace, ORDER, [])
    return getattr(namespace, ORDER)


def webroot_map(args: argparse.Namespace, normalize: Callable[[str], str]) -> tuple[tuple[str, Path], ...]:
    """(name, resolved webroot) for every name, in the order given; () without --webroot."""
    order = getattr(args, ORDER, None) or []
    roots = [value for kind, value in order if kind == "root"]
    if not roots:
        return ()
    for root in roots:
        if not root.is_dir():
            raise UsageError(f"--webroot {root}: not a directory")
    mapping: dict[str, Path] = {}
    unclaimed = [part for value in args.domains for part in value.split(",") if part.strip()]
    current: Path | None = None
    for kind, value in order:
        if kind == "root":
            current = value.resolve()
            continue
        for part in (p for p in value.split(",") if p.strip()):
            if current is None:
                unclaimed.append(part)
            else:
                mapping.setdefault(normalize(part), current)
    last = roots[-1].resolve()
    for part in unclaimed:
        mapping.setdefault(normalize(part), last)
    return tuple(mapping.items())


def roots_of(pairs: tuple[tuple[str, Path], ...]) -> list[Path]:
    """The distinct webroots of a map, in order."""
    return list(dict.fromkeys(root for _, root in pairs))
