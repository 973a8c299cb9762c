"""Notebook 03's hidden tests in-process (seconds; the pipeline tests do the same through nbgrader and
the sandbox): the solution gets every test, a blank notebook none, each catalogued wrong answer loses
exactly its own test with its message, and the judges never need compresslib's reference answers."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from graded import ROOT, assert_blank_scores_zero, assert_catalog_entry_caught, assert_full_marks, solution_namespace

import compresslib.prune as prune
from compresslib.course.examples import wrong_answers
from compresslib.grading.fixtures import load_fixture

ASSIGNMENT = "03_lottery_tickets"
IMPORTS = {"torch": torch, "nn": nn, "F": F}
CATALOG = wrong_answers(ROOT, ASSIGNMENT)


def test_notebook_solution_passes_every_hidden_test():
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS))


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_each_wrong_answer_loses_exactly_its_test_with_its_message(name):
    assert_catalog_entry_caught(ASSIGNMENT, IMPORTS, CATALOG[name])


def test_blank_notebook_scores_zero_on_every_test():
    assert_blank_scores_zero(ASSIGNMENT, IMPORTS)


def test_catalog_has_at_least_six_mistakes_per_graded_function():
    per_test = {test: sum(entry["test"] == test for entry in CATALOG.values()) for test in load_fixture(ASSIGNMENT)["tests"]}
    assert min(per_test.values()) >= 6, per_test


def test_grading_never_calls_the_library_reference_answers(monkeypatch):
    """The student kit locks compresslib.prune's pruning functions while notebook 03 is open: grading the
    solution must work with every one of them broken."""
    def locked(*args, **kwargs):
        raise AssertionError("a reference answer was called")

    for name in ("magnitude_mask", "prune_remaining", "lowest_k", "mask_from_scores", "apply_mask",
                 "iterative_magnitude_pruning"):
        monkeypatch.setattr(prune, name, locked)
    monkeypatch.setattr(prune.MaskEnforcer, "__call__", locked)
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS))


# Correct answers written differently from the solution: the hidden tests must not depend on how.
ALTERNATIVES = {
    "magnitude_mask_kthvalue": ("magnitude_mask", '''def magnitude_mask(weights, sparsity):
    names = list(weights)
    scores = torch.cat([weights[n].detach().abs().reshape(-1) for n in names]).double()
    k = int(round(sparsity * scores.numel()))
    keep = torch.ones(scores.numel())
    if k > 0:
        t = torch.kthvalue(scores, k).values
        keep[scores < t] = 0
        ties = (scores == t).nonzero().flatten()
        keep[ties[: k - int((scores < t).sum())]] = 0
    sizes = [weights[n].numel() for n in names]
    return {n: part.reshape(weights[n].shape) for n, part in zip(names, keep.split(sizes))}
'''),
    "magnitude_mask_numpy": ("magnitude_mask", '''import numpy as np


def magnitude_mask(weights, sparsity):
    flat = np.concatenate([w.detach().cpu().numpy().ravel() for w in weights.values()])
    order = np.argsort(np.abs(flat), kind="stable")
    keep = np.ones(flat.size)
    keep[order[: int(round(sparsity * flat.size))]] = 0
    out, i = {}, 0
    for name, w in weights.items():
        out[name] = torch.tensor(keep[i : i + w.numel()], dtype=w.dtype).reshape(w.shape)
        i += w.numel()
    return out
'''),
    "prune_remaining_own_ranking": ("prune_remaining", '''def prune_remaining(weights, fraction, previous):
    names = list(weights)
    scores = torch.cat([weights[n].detach().abs().flatten() for n in names])
    alive = torch.cat([previous[n].flatten() != 0 for n in names])
    scores = torch.where(alive, scores, torch.full_like(scores, -float("inf")))
    k = int((~alive).sum()) + round(fraction * int(alive.sum()))
    keep = torch.ones(scores.numel())
    keep[torch.sort(scores, stable=True).indices[:k]] = 0
    out, offset = {}, 0
    for n in names:
        out[n] = keep[offset : offset + weights[n].numel()].view(weights[n].shape)
        offset += weights[n].numel()
    return out
'''),
    "prune_remaining_masked_fill": ("prune_remaining", '''def prune_remaining(weights, fraction, previous):
    zeroed = {n: w.detach().masked_fill(previous[n] == 0, 0.0) for n, w in weights.items()}
    n = sum(w.numel() for w in weights.values())
    remaining = sum(int(m.sum()) for m in previous.values())
    k = (n - remaining) + round(fraction * remaining)
    return magnitude_mask(zeroed, k / n)
'''),
    "train_with_hooks_and_data": ("train_with_mask", '''def apply_mask(model, mask):
    for name, p in model.named_parameters():
        if name in mask:
            p.data[mask[name] == 0] = 0.0
    return model


def train_with_mask(model, mask, optimizer, batches):
    params = dict(model.named_parameters())
    handles = [params[n].register_hook(lambda g, m=m: g * m) for n, m in mask.items()]
    model.train()
    apply_mask(model, mask)
    try:
        for x, y in batches:
            optimizer.zero_grad(set_to_none=False)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            apply_mask(model, mask)
    finally:
        for h in handles:
            h.remove()
    return model
'''),
    "imp_round_state_dict": ("imp_round", '''def imp_round(model, theta0, mask, fraction, train):
    apply_mask(model, mask)
    train(model, {name: m.bool() for name, m in mask.items()})
    trained = model.state_dict()
    new_mask = prune_remaining({n: trained[n] for n in mask}, fraction, mask)
    model.load_state_dict({k: (v * new_mask[k] if k in new_mask else v) for k, v in theta0.items()})
    return new_mask
'''),
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_correct_answers_written_differently_keep_full_marks(name):
    cell, code = ALTERNATIVES[name]
    assert_full_marks(ASSIGNMENT, solution_namespace(ASSIGNMENT, IMPORTS, {cell: code}))
