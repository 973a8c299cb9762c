"""The first code that runs inside a grading sandbox: limits, then the module asked for.

This file is started as a script by :mod:`compresslib.grading.sandbox` (``python boot.py -m MODULE ARGS``
or ``python boot.py -c CODE``), inside the sandbox and before any student code. It uses the standard
library only, because the kit's ``compresslib`` (not the instructor's) is the one on the path.

It reads ``$COMPRESSLIB_SANDBOX_BOOT`` (JSON, removed from the environment once read):

* ``rlimits``: ``{"RLIMIT_NPROC": [soft, hard], ...}``. RLIMIT_NPROC is set
  here rather than before the sandbox starts, because here it counts the tasks of the sandbox's own
  user namespace, not every process of the same uid on the host.
* ``kit``: the folder that must provide ``compresslib``. Any other ``compresslib`` the interpreter could
  import (a setuptools editable finder, a path-hook placeholder, a ``sys.path`` entry holding a
  ``compresslib`` package) is removed from the import system, so ``import compresslib`` can only give
  the kit's copy, and ``compresslib.grading`` exists only if the kit ships it.
"""

import json
import os
import resource
import runpy
import sys

BOOT_VARIABLE = "COMPRESSLIB_SANDBOX_BOOT"
PACKAGE = "compresslib"


def apply_limits(rlimits):
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))


def forget_other_copies(kit):
    """Drop every route to a ``compresslib`` outside ``kit`` from the import system."""
    for finder in list(sys.meta_path):
        mapping = getattr(sys.modules.get(getattr(finder, "__module__", ""), None), "MAPPING", None)
        if isinstance(mapping, dict) and PACKAGE in mapping:
            sys.meta_path.remove(finder)
    kept = []
    for entry in sys.path:
        hook = entry.endswith(".__path_hook__") and PACKAGE in entry
        other = bool(entry) and os.path.realpath(entry) != os.path.realpath(kit) and os.path.isdir(
            os.path.join(entry, PACKAGE))
        if not (hook or other):
            kept.append(entry)
    sys.path[:] = kept
    sys.path_importer_cache.clear()
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def main(argv):
    boot = json.loads(os.environ.pop(BOOT_VARIABLE))
    apply_limits(boot["rlimits"])
    del sys.path[0]  # this script's folder
    forget_other_copies(boot["kit"])
    if len(argv) >= 2 and argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif len(argv) >= 2 and argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<sandbox>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit("usage: boot.py -m MODULE [ARGS] | -c CODE [ARGS]")


if __name__ == "__main__":
    main(sys.argv[1:])
