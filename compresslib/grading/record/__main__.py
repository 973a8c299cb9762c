"""``python -m compresslib.grading.record [ASSIGNMENT ...]``: (re)record grading fixtures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compresslib.grading.fixtures import FIXTURES_DIR
from compresslib.grading.record import RECORDERS, write_fixture


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compresslib.grading.record", description=__doc__)
    parser.add_argument("assignments", nargs="*", choices=[[], *sorted(RECORDERS)], default=[],
                        help="default: every assignment with a recorder")
    parser.add_argument("--out", type=Path, default=FIXTURES_DIR, help="folder to write the fixtures into")
    args = parser.parse_args(argv)
    for assignment in args.assignments or sorted(RECORDERS):
        print(write_fixture(assignment, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
