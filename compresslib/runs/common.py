"""What every reference run shares: provenance, seeding, result files that make reruns resumable."""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RUNS_ROOT = Path(os.environ.get("COMPRESSLIB_RUNS", "runs"))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def provenance(config: dict, device: torch.device) -> dict:
    """Where a result came from: the config, library versions, the device and the time."""
    import datasets
    import transformers

    import compresslib

    return {
        "config": config,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "datasets": datasets.__version__,
            "compresslib": compresslib.__version__,
        },
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(path: Path, payload) -> None:
    """Write JSON atomically (a crash mid-write never leaves a truncated result behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    os.replace(handle.name, path)


def read_json(path: Path):
    with open(path) as handle:
        return json.load(handle)


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


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
