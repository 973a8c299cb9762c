"""Result files written atomically: a crash mid-write never leaves a truncated file behind.

Every file the kit writes as a result (JSON, safetensors, Markdown) goes through :func:`atomic_path`:
the content is written to a temporary file in the same folder, then moved over the target in one
``os.replace``. A reader therefore sees either the old file or the complete new one, which is what
lets runs treat "the file exists" as "the step is finished".
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error, move it onto ``path``.

    The parent folder is created. On an error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # created with the umask's mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, payload) -> None:
    """Write ``payload`` as indented JSON (key order kept, a final newline) to ``path`` atomically."""
    write_text(path, json.dumps(payload, indent=2) + "\n")


def read_json(path):
    """The JSON value stored at ``path``."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
