"""The one word for "how big" across the kit: ``quick``, ``cpu`` or ``gpu``.

* ``quick``: seconds to a few minutes on a laptop CPU. What grading, CI and ``make demo`` use.
* ``cpu``: the full CPU setting (a notebook's default size; the CPU reference runs of ``make reference``).
* ``gpu``: larger settings for a GPU (bf16 autocast).

Reference runs take ``--profile``; notebooks read the environment variable ``COMPRESSLIB_PROFILE``
through :func:`notebook_profile`: under nbgrader (``validate``, ``autograde``) it defaults to ``quick``,
so that a notebook validates the same wherever it is opened, with or without the course's config.
"""

from __future__ import annotations

import os

PROFILES = ("quick", "cpu", "gpu")
ENVIRONMENT_VARIABLE = "COMPRESSLIB_PROFILE"
# Words earlier versions of the kit used, still accepted so that old configs keep working.
ALIASES = {"tiny": "quick", "notebook": "cpu", "full": "cpu"}


def normalise_profile(name: str) -> str:
    """``name`` as one of :data:`PROFILES` (old aliases accepted), or a ValueError naming the choices."""
    profile = ALIASES.get(name, name)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: use one of {', '.join(PROFILES)}")
    return profile


def notebook_profile(default: str = "cpu") -> str:
    """The profile a notebook runs at: ``$COMPRESSLIB_PROFILE`` if set; else ``quick`` when nbgrader runs the
    notebook (it sets ``NBGRADER_EXECUTION`` to ``validate`` or ``autograde`` in the kernel's environment);
    else ``default``."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not chosen and os.environ.get("NBGRADER_EXECUTION"):
        chosen = "quick"
    return normalise_profile(chosen or default)
