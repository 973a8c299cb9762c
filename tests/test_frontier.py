"""Reading a ledger as a frontier: domination, budgets and the nearest larger model, on hand-made points."""

import pytest

from compresslib.runs.frontier import best_within, nearest_at_least, pareto_front, stored_bytes

POINTS = [  # (name, bytes, accuracy)
    ("fp32", 100, 0.80),
    ("int8", 25, 0.79),
    ("4-bit", 13, 0.70),
    ("pruned", 60, 0.78),  # dominated by int8: larger and less accurate
    ("tiny", 13, 0.60),  # dominated by 4-bit: as small, less accurate
    ("lucky", 100, 0.80),  # an exact duplicate of fp32: the first is kept
]


def test_the_front_keeps_only_undominated_points_by_increasing_bytes():
    assert pareto_front(POINTS) == ["4-bit", "int8", "fp32"]
    assert pareto_front([("a", 1, 0.5)]) == ["a"]
    with pytest.raises(ValueError, match="distinct"):
        pareto_front([("a", 1, 0.5), ("a", 2, 0.6)])


def test_best_within_a_budget_ranks_by_accuracy_then_size():
    assert best_within(POINTS, 30) == ["int8", "4-bit", "tiny"]
    assert best_within(POINTS, 12) == []
    assert best_within(POINTS, 100)[:3] == ["fp32", "lucky", "int8"]
    with pytest.raises(ValueError, match="budget"):
        best_within(POINTS, 0)


def test_the_nearest_candidate_at_least_as_large_never_gives_fewer_bytes_beyond_the_tolerance():
    candidates = [("a", 10), ("b", 20), ("c", 40)]
    assert nearest_at_least(15, candidates) == "b"
    assert nearest_at_least(20, candidates) == "b"
    assert nearest_at_least(20.3, candidates) == "c"
    assert nearest_at_least(20.3, candidates, tolerance=0.02) == "b"  # 20 >= 0.98 * 20.3
    assert nearest_at_least(41, candidates) is None
    with pytest.raises(ValueError, match="tolerance"):
        nearest_at_least(1, candidates, tolerance=1.0)


def test_stored_bytes_are_the_smaller_format():
    assert stored_bytes({"bytes": 100, "bytes_sparse": None}) == 100
    assert stored_bytes({"bytes": 100, "bytes_sparse": 70}) == 70
    assert stored_bytes({"bytes": 100, "bytes_sparse": 130}) == 100
