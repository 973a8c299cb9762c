"""``python -m compresslib.runs {distill,tickets} --profile quick|cpu|gpu [--out DIR]``."""

from __future__ import annotations

import argparse
import importlib
import sys

RUNS = {
    "distill": "compresslib.runs.distill",
    "tickets": "compresslib.runs.tickets",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compresslib.runs", description=__doc__)
    parser.add_argument("run", choices=sorted(RUNS), help="which reference experiment")
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(RUNS[args.run])
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
