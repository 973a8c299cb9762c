"""``python -m compresslib.runs {distill,tickets,compress} --profile quick|cpu|gpu [--out DIR] [--help]``, and
``python -m compresslib.runs readme [--check]`` / ``publish <run> --profile cpu`` for the README's results."""

from __future__ import annotations

import argparse
import importlib
import sys

from compresslib.runs import readme

RUNS = {
    "distill": "compresslib.runs.distill",
    "tickets": "compresslib.runs.tickets",
    "compress": "compresslib.runs.compress",
}
README_COMMANDS = ("readme", "publish")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in README_COMMANDS:
        return readme.main(argv)
    if argv and argv[0] in RUNS:  # the run parses the rest, --help included
        return importlib.import_module(RUNS[argv[0]]).main(argv[1:]) or 0
    parser = argparse.ArgumentParser(prog="python -m compresslib.runs", description=__doc__)
    parser.add_argument("run", choices=[*sorted(RUNS), *README_COMMANDS], help="which reference experiment or command")
    parser.parse_args(argv)  # prints the usage, or the error naming the choices
    return 2

if __name__ == "__main__":
    sys.exit(main())
