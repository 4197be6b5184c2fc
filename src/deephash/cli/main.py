"""The ``deephash`` command line: one module per sub-command, each exposing ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys

from deephash import __version__

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func``.
_COMMANDS = [
    "data",
    "models",
    "features",
    "train",
    "evaluate",
    "encode",
    "tune",
    "compare",
    "index",
    "search",
    "report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deephash",
        description="Triplet metric learning and deep hashing: train, evaluate, index and search.",
    )
    parser.add_argument("--version", action="version", version=f"deephash {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"deephash.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        # Expected user errors: one clear line, no traceback.
        print(f"deephash {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
