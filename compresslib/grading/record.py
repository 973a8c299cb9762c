"""Record the grading fixtures: ``python -m compresslib.grading.record 01_soft_targets``.

The expected values of the loss functions are computed here in NumPy float64 from the lecture's
closed forms, independently of compresslib's torch implementation (which the tests then check
against the same fixtures). The kd_step fixture is recorded by running compresslib's reference
``kd_step`` once on tiny models whose weights are stored in the fixture, so it replays exactly on
any device.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

FIXTURE_DIR = Path(__file__).parent / "fixtures"


def _provenance(assignment: str) -> dict:
    return {
        "command": f"python -m compresslib.grading.record {assignment}",
        "recorded": time.strftime("%Y-%m-%d"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "note": "loss values: NumPy float64 closed forms of the lecture; kd_step: compresslib.kd_step on CPU",
    }


# --- closed forms in NumPy ------------------------------------------------------------------------


def np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_cross_entropy(target_probs, log_probs):
    """Mean over examples of -sum_k target_k log p_k."""
    return float(-(target_probs * log_probs).sum(-1).mean())


def np_distillation_loss(z, v, T):
    return T**2 * np_cross_entropy(np_softmax(v / T), np_log_softmax(z / T))


def np_hard_loss(z, labels):
    return float(-np_log_softmax(z)[np.arange(len(labels)), labels].mean())


def _softmax_cases(rng) -> dict:
    cases = []
    z = rng.normal(size=(3, 5)) * 3
    for T, dim in ((2.0, -1), (0.5, -1), (4.0, 0)):
        cases.append({
            "logits": z.tolist(), "temperature": T, "dim": dim,
            "expected": np_softmax(z / T, axis=dim).tolist(),
            "wrong": {
                "no_temperature": np_softmax(z, axis=dim).tolist(),
                "t_twice": np_softmax(z / T**2, axis=dim).tolist(),
                "times_t": np_softmax(z * T, axis=dim).tolist(),
                "wrong_dim": np_softmax(z / T, axis=(0 if dim == -1 else -1)).tolist(),
            },
        })
    big = np.array([[1000.0, 990.0, 0.0], [-1000.0, 0.0, 5.0]])
    cases.append({"logits": big.tolist(), "temperature": 1.0, "dim": -1, "expected": np_softmax(big).tolist(), "wrong": {}})
    return {"cases": cases}


def _distillation_cases(rng) -> dict:
    cases = []
    for n, k, T in ((4, 5, 2.0), (3, 6, 4.0)):
        z = rng.normal(size=(n, k)) * 2
        v = rng.normal(size=(n, k)) * 2
        p, q = np_softmax(z / T), np_softmax(v / T)
        log_p, log_q = np_log_softmax(z / T), np_log_softmax(v / T)
        ce = np_cross_entropy(q, log_p)
        cases.append({
            "student_logits": z.tolist(), "teacher_logits": v.tolist(), "temperature": T,
            "expected": T**2 * ce,
            "wrong": {
                "dropped_t2": ce,
                "times_t": T * ce,
                "t_twice": T**2 * np_cross_entropy(np_softmax(v / T**2), np_log_softmax(z / T**2)),
                "reversed": T**2 * np_cross_entropy(p, log_q),
                "kl_reversed": T**2 * float((p * (log_p - log_q)).sum(-1).mean()),
                "kl_instead_of_ce": T**2 * float((q * (log_q - log_p)).sum(-1).mean()),
                "sum_not_mean": n * T**2 * ce,
                "teacher_no_temperature": T**2 * np_cross_entropy(np_softmax(v), log_p),
                "student_no_temperature": T**2 * np_cross_entropy(q, np_log_softmax(z)),
            },
        })
    return {"cases": cases}


def _combined_cases(rng) -> dict:
    cases = []
    for n, k, T, alpha in ((5, 4, 2.0, 0.3), (4, 3, 4.0, 0.8)):
        z = rng.normal(size=(n, k)) * 2
        v = rng.normal(size=(n, k)) * 2
        labels = rng.integers(0, k, size=n)
        hard, soft = np_hard_loss(z, labels), np_distillation_loss(z, v, T)
        cases.append({
            "student_logits": z.tolist(), "teacher_logits": v.tolist(), "labels": labels.tolist(),
            "alpha": alpha, "temperature": T,
            "expected": alpha * hard + (1 - alpha) * soft,
            "wrong": {
                "hard_at_t": alpha * np_hard_loss(z / T, labels) + (1 - alpha) * soft,
                "alpha_swapped": (1 - alpha) * hard + alpha * soft,
                "soft_without_t2": alpha * hard + (1 - alpha) * soft / T**2,
                "unweighted_sum": hard + soft,
            },
        })
    return {"cases": cases}


def _kd_step_case() -> dict:
    from compresslib.distill import kd_step
    from compresslib.grading.soft_targets import ProbeStudent, ProbeTeacher, state_to_lists

    torch.manual_seed(7)
    teacher, student = ProbeTeacher(), ProbeStudent()
    batch = {"features": torch.randn(8, 6), "labels": torch.randint(0, 4, (8,))}
    initial = {"teacher": state_to_lists(teacher), "student": state_to_lists(student)}
    settings = {"temperature": 2.0, "alpha": 0.5, "lr": 0.5}
    record = kd_step(teacher, student, batch, torch.optim.SGD(student.parameters(), lr=settings["lr"]),
                     temperature=settings["temperature"], alpha=settings["alpha"])
    return {
        "initial": initial,
        "batch": {"features": batch["features"].tolist(), "labels": batch["labels"].tolist()},
        **settings,
        "expected_loss": record["loss"],
        "expected_student": state_to_lists(student),
    }


def record_soft_targets() -> dict:
    rng = np.random.default_rng(2023)
    return {
        "provenance": _provenance("01_soft_targets"),
        "softmax_with_temperature": _softmax_cases(rng),
        "distillation_loss": _distillation_cases(rng),
        "combined_loss": _combined_cases(rng),
        "kd_step": _kd_step_case(),
    }


RECORDERS = {"01_soft_targets": record_soft_targets}


def write_fixture(assignment: str, directory: Path = FIXTURE_DIR) -> Path:
    import json

    payload = RECORDERS[assignment]()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{assignment}.json"
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", choices=sorted(RECORDERS))
    parser.add_argument("--out", type=Path, default=FIXTURE_DIR)
    args = parser.parse_args(argv)
    print(write_fixture(args.assignment, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
