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
    from deephash.miners import list_miners
    from deephash.models import list_backbones

    print("backbones:", ", ".join(list_backbones(args.pattern)))
    print("losses:   ", ", ".join(deephash.losses.list_losses(args.pattern)))
    print(
        "miners:   ", ", ".join(list_miners(args.pattern) if args.pattern != "*" else list_miners())
    )
    return 0
