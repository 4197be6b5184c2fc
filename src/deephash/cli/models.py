"""``deephash models``: list what the registries hold (backbones, losses, miners)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list registered backbones, losses and miners")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import deephash.losses
    from deephash.miners import list_miners, list_pair_miners
    from deephash.models import list_backbones

    sections = {
        "backbones": list_backbones(args.pattern),
        "losses": deephash.losses.list_losses(args.pattern),
        "miners": list_miners(args.pattern) + list_pair_miners(args.pattern),
    }
    found = {k: v for k, v in sections.items() if v}
    if not found:
        print(f"nothing registered matches {args.pattern!r}")
        return 1
    for name, items in found.items():
        print(f"{name + ':':<11}{', '.join(items)}")
    return 0
