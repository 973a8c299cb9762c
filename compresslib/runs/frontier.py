"""Reading a cost ledger as a frontier: which models are not beaten on both size and accuracy, which one
is best within a byte budget, and which model of another family is the nearest one at least as large.

Pure functions of ``(name, bytes, accuracy)`` records; the compression run's claims are built on them.
A model's *stored bytes* are the smaller of its two formats: dense at its precision, or CSR for a
pruned model where that is smaller (:mod:`compresslib.ledger`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def stored_bytes(row: Mapping) -> int:
    """The smaller of a ledger row's dense ``bytes`` and its ``bytes_sparse`` (when it has one)."""
    dense, sparse = row["bytes"], row.get("bytes_sparse")
    return min(dense, sparse) if sparse is not None else dense


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """The names of the points ``(name, bytes, accuracy)`` that no other point dominates, by increasing bytes.

    A point dominates another when it is no larger and no less accurate, and strictly better in one of the
    two; of exact duplicates the first is kept."""
    names = [p[0] for p in points]
    if len(set(names)) != len(names):
        raise ValueError("points must have distinct names")
    front = []
    for i, (name, size, accuracy) in enumerate(points):
        dominated = any(
            (s <= size and a >= accuracy and (s < size or a > accuracy)) or (s == size and a == accuracy and j < i)
            for j, (_, s, a) in enumerate(points) if j != i
        )
        if not dominated:
            front.append((size, -accuracy, name))
    return [name for _, _, name in sorted(front)]


def best_within(points: Sequence[tuple[str, float, float]], budget: float) -> list[str]:
    """The names of the points of at most ``budget`` bytes, most accurate first (ties: smaller first)."""
    if not budget > 0:
        raise ValueError(f"budget must be a positive number of bytes, got {budget!r}")
    inside = [(-accuracy, size, name) for name, size, accuracy in points if size <= budget]
    return [name for _, _, name in sorted(inside)]


def nearest_at_least(size: float, candidates: Sequence[tuple[str, float]], tolerance: float = 0.0) -> str | None:
    """The name of the candidate ``(name, bytes)`` with the fewest bytes that are still at least ``size``,
    less a share ``tolerance`` of it (``bytes >= (1 - tolerance) * size``; None when every candidate is
    smaller): the comparison at equal bytes that gives the other model at least as many bytes, up to the
    tolerance."""
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be a fraction in [0, 1), got {tolerance!r}")
    larger = [(s, name) for name, s in candidates if s >= (1.0 - tolerance) * size]
    return min(larger)[1] if larger else None
