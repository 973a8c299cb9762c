"""``python -m compresslib.runs {distill,tickets} --profile quick|cpu|gpu [--out DIR] [--help]``, and
``python -m compresslib.runs readme [--check]`` / ``publish <run> --profile cpu`` for the README's results."""

from __future__ import annotations

import argparse
import importlib
import sys

from compresslib.runs import readme

RUNS = {
    "distill": "compresslib.runs.distill",
    "tickets": "compresslib.runs.tickets",
}
README_COMMANDS = ("readme", "publish")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in README_COMMANDS:
        return readme.main(argv)
    parser = argparse.ArgumentParser(prog="python -m compresslib.runs", description=__doc__)
    parser.add_argument("run", choices=[*sorted(RUNS), *README_COMMANDS], help="which reference experiment")
    args, rest = parser.parse_known_args(argv)
    return importlib.import_module(RUNS[args.run]).main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
