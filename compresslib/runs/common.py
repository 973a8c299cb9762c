"""What every reference run shares: seeding, provenance, cached parts that make reruns resumable, and
the compact form of per-example predictions in result files."""

from __future__ import annotations

import platform
import random
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers

import compresslib
from compresslib.files import read_json, write_json

__all__ = ["cached", "decode_binary", "decode_classes", "encode_binary", "encode_classes", "invocations", "provenance",
           "read_json", "seed_everything", "write_json"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def provenance(config: dict, device: torch.device, command: str) -> dict:
    """Where a result came from: the command, the config, library versions, the device and the time."""
    return {
        "command": command,
        "config": config,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "datasets": datasets.__version__,
            "compresslib": compresslib.__version__,
        },
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch_threads": torch.get_num_threads(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def cached(path: Path, compute, *, config: dict | None = None):
    """Return the result stored at ``path`` if it exists and was made with the same ``config``;
    else compute it, store it with its config, and return it. This is what makes reruns skip work."""
    if path.exists():
        stored = read_json(path)
        if config is None or stored.get("config") == config:
            return stored["result"]
    result = compute()
    write_json(path, {"config": config, "result": result})
    return result


def invocations(previous_results: Path, seconds: float) -> list[dict]:
    """Every invocation of a profile, oldest first, this one (``seconds`` long) last: a rerun that only
    re-plots from cached parts keeps the time of the run that computed them on record."""
    earlier = read_json(previous_results).get("invocations", []) if previous_results.exists() else []
    return earlier + [{"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_seconds": round(seconds, 1)}]


def encode_classes(classes) -> str:
    """Per-example classes 0-9 as one string, one digit per example (``[0, 1, 1]`` -> ``"011"``): a
    test split's predictions stay one line of ``results.json``."""
    values = [int(c) for c in classes]
    if any(not 0 <= c <= 9 for c in values):
        raise ValueError("encode_classes stores classes 0-9 only, one digit each")
    return "".join(map(str, values))


def decode_classes(text: str) -> np.ndarray:
    """The inverse of :func:`encode_classes`."""
    return np.array([int(c) for c in text], dtype=np.int64)


def encode_binary(classes) -> str:
    """Per-example classes 0/1 packed eight to a byte, as hex (``[1, 0, 1]`` -> ``"a0"``): a binary task's test
    predictions in a quarter of :func:`encode_classes`' length. Decode with :func:`decode_binary` and the count."""
    values = np.asarray([int(c) for c in classes], dtype=np.uint8)
    if values.size and values.max() > 1:
        raise ValueError("encode_binary stores classes 0 and 1 only")
    return np.packbits(values).tobytes().hex()


def decode_binary(text: str, n: int) -> np.ndarray:
    """The first ``n`` classes packed by :func:`encode_binary`."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))
    if not 0 <= n <= len(bits) or len(bits) - n >= 8:
        raise ValueError(f"{text[:16]}... holds {len(bits)} bits, which cannot be {n} packed classes")
    return bits[:n].astype(np.int64)
