"""Rewinding at an equal budget: ``fit(start_step=k)`` continues a run from step k (same batches, same learning
rates, T - k steps), and IMP with ``resume_schedule`` / ``rewind_names`` calls it so."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from compresslib.prune import iterative_magnitude_pruning
from compresslib.training import fit

STEPS = 10


class Replay:
    """Batches ``{"x", "labels"}`` in an order fixed when the object is made (a fresh permutation per pass)."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(24, 3, generator=g)
        self.y = (self.x[:, 0] > 0).long()
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return 4

    def __iter__(self):
        order = torch.randperm(24, generator=self.generator)
        for i in range(0, 24, 6):
            yield {"x": self.x[order[i:i + 6]], "labels": self.y[order[i:i + 6]]}


def step(model, batch, optimizer):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(batch["x"]), batch["labels"])
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"], "first": batch["labels"][:3].tolist()}


def linear():
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def test_start_step_continues_the_schedule_and_the_batches():
    full = fit(linear(), Replay(), steps=STEPS, lr=0.1, step=step, warmup_fraction=0.2, device=torch.device("cpu"))
    seen = []
    rest = fit(linear(), Replay(), steps=STEPS, lr=0.1, step=step, warmup_fraction=0.2, start_step=4,
               on_step=seen.append, device=torch.device("cpu"))
    assert len(rest) == STEPS - 4 and seen == list(range(5, STEPS + 1))
    assert [r["lr"] for r in rest] == pytest.approx([r["lr"] for r in full[4:]])
    assert [r["first"] for r in rest] == [r["first"] for r in full[4:]]  # batches 5..T of the same order
    # the plausible wrong answers: a fresh schedule, or the first batches again
    fresh = fit(linear(), Replay(), steps=STEPS - 4, lr=0.1, step=step, warmup_fraction=0.2, device=torch.device("cpu"))
    assert [r["lr"] for r in fresh] != pytest.approx([r["lr"] for r in rest])


def test_steps_or_epochs_and_bad_start_step_are_named():
    with pytest.raises(ValueError, match="exactly one"):
        fit(linear(), Replay(), lr=0.1, step=step)
    with pytest.raises(ValueError, match="exactly one"):
        fit(linear(), Replay(), epochs=1, steps=3, lr=0.1, step=step)
    with pytest.raises(ValueError, match="start_step"):
        fit(linear(), Replay(), steps=3, lr=0.1, step=step, start_step=3)
    with pytest.raises(ValueError, match="steps"):
        fit(linear(), Replay(), steps=0, lr=0.1, step=step)


class Trainer:
    """What IMP calls: records the start step and the weights each round starts from."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, *, after_step, on_step, start_step=0):
        self.calls.append((start_step, {k: v.clone() for k, v in model.state_dict().items()}))
        fit(model, Replay(), steps=STEPS, lr=0.1, step=step, after_step=after_step, on_step=on_step,
            start_step=start_step, device=torch.device("cpu"))


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))


def evaluate(model):
    return {"accuracy": 0.5}


def test_resume_schedule_rewinds_to_step_k_and_trains_the_rest(tmp_path):
    trainer = Trainer()
    result = iterative_magnitude_pruning(mlp(), trainer, evaluate, rounds=2, fraction=0.3, out_dir=tmp_path,
                                         rewind=0.3, train_steps=STEPS, names=["0.weight"], progress=False,
                                         resume_schedule=True, rewind_names=["0.weight", "0.bias"])
    assert [start for start, _ in trainer.calls] == [0, 3, 3]
    at_k = load_file(tmp_path / "rewind.safetensors")
    round0 = result.checkpoint(0)
    for _, start in trainer.calls[1:]:
        torch.testing.assert_close(start["0.bias"], at_k["0.bias"])  # rewound
    # not rewound: the last layer starts round 1 from round 0's final weights
    torch.testing.assert_close(trainer.calls[1][1]["2.weight"], round0["2.weight"])
    assert not torch.equal(trainer.calls[1][1]["2.weight"], at_k["2.weight"])


def test_without_resume_each_round_trains_from_step_0(tmp_path):
    trainer = Trainer()
    iterative_magnitude_pruning(mlp(), trainer, evaluate, rounds=1, fraction=0.3, out_dir=tmp_path, rewind=0.3,
                                train_steps=STEPS, names=["0.weight"], progress=False)
    assert [start for start, _ in trainer.calls] == [0, 0]
    with pytest.raises(ValueError, match="rewind_names"):
        iterative_magnitude_pruning(mlp(), trainer, evaluate, rounds=1, fraction=0.3, out_dir=tmp_path / "x",
                                    rewind=0.3, train_steps=STEPS, names=["0.weight"], progress=False,
                                    rewind_names=["nope"])
