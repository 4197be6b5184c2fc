"""The ``deephash`` command line: one module per sub-command, each exposing ``register``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# OpenMP worker threads (torch's and numba's) otherwise spin-wait between parallel regions; with
# miners launching a numba parallel region every step, the spinning thread eats up to half a core
# beside training on a 2-core machine. Must be set before torch or numba load libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _threads_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


# ``--threads N`` must reach OpenMP before torch loads it: torch.set_num_threads alone leaves
# oneDNN's convolutions on all cores, which oversubscribes the CPU when runs share a machine.
_THREADS = _threads_from_argv(sys.argv)
if _THREADS and _THREADS.isdigit():
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = _THREADS

from deephash import __version__  # noqa: E402  (after the OpenMP environment is set)

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
    "collection",
    "serve",
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
