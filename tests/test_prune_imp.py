"""IMP with rewinding on a tiny MLP: schedule, rewinding, standard pruning, resume, baselines."""

import pytest
import torch
from torch import nn

from compresslib.prune import (
    branch_from_round0,
    finished_rounds,
    highest_winning_sparsity,
    is_winning_ticket,
    iterative_magnitude_pruning,
    reinitialize,
    shuffle_within_layers,
)

STEPS = 6


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Dropout(0.1), nn.Linear(12, 2))


NAMES = ["0.weight", "3.weight"]


class Trainer:
    """Mini-batch AdamW with weight decay; records the weights each round starts from."""

    def __init__(self, fail_at_call=None):
        self.starts, self.calls, self.fail_at_call = [], 0, fail_at_call

    def __call__(self, model, *, after_step, on_step):
        self.calls += 1
        if self.fail_at_call == self.calls:
            raise KeyboardInterrupt("simulated interruption")
        self.starts.append({k: v.clone() for k, v in model.state_dict().items()})
        g = torch.Generator().manual_seed(7)
        x = torch.randn(64, 5, generator=g)
        y = (x[:, 0] - x[:, 2] > 0).long()
        opt = torch.optim.AdamW(model.parameters(), lr=0.03, weight_decay=0.1)
        model.train()
        for step in range(1, STEPS + 1):
            idx = torch.randperm(64)[:16]  # uses the global torch seed that IMP sets per round
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            after_step(model)
            on_step(step)


def evaluate(model):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(128, 5, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    model.eval()
    with torch.no_grad():
        return {"accuracy": (model(x).argmax(-1) == y).float().mean().item(), "loss": nn.functional.cross_entropy(model(x), y).item()}


def run(tmp, rounds=3, rewind="init", trainer=None, **kw):
    model = mlp()
    trainer = trainer or Trainer()
    result = iterative_magnitude_pruning(model, trainer, evaluate, rounds=rounds, fraction=0.4, out_dir=tmp,
                                         rewind=rewind, train_steps=STEPS, names=NAMES, seed=3, progress=False, **kw)
    return model, trainer, result


def test_schedule_masks_shrink_and_files(tmp_path):
    _, _, result = run(tmp_path)
    assert [r["round"] for r in result.rounds] == [0, 1, 2, 3]
    for r, metrics in enumerate(result.rounds):
        assert metrics["sparsity"] == pytest.approx(1 - 0.6**r, abs=2 / 72)
        for f in ("mask.safetensors", "checkpoint.safetensors", "metrics.json"):
            assert (tmp_path / f"round_{r:02d}" / f).exists()
        if r:
            result.mask(r).check_shrinks(result.mask(r - 1))
            ckpt = result.checkpoint(r)
            mask = result.mask(r)
            assert all(torch.count_nonzero(ckpt[n][~mask[n]]) == 0 for n in NAMES)


def test_rewinding_resets_survivors_to_theta0_and_keeps_pruned_at_zero(tmp_path):
    theta0 = mlp().state_dict()
    _, trainer, result = run(tmp_path, rounds=2)
    for r in (1, 2):
        start, mask = trainer.starts[r], result.mask(r)
        for name, value in theta0.items():
            if name in mask:
                assert torch.equal(start[name][mask[name]], value[mask[name]])
                assert torch.count_nonzero(start[name][~mask[name]]) == 0
            else:
                assert torch.equal(start[name], value)  # biases rewound too


def test_rewind_to_a_fraction_of_training(tmp_path):
    _, trainer, result = run(tmp_path, rounds=1, rewind=0.5)
    rewind_point = trainer.starts[1]
    # weights after step 3 of round 0, survivors only: differ from θ0 and from the final weights
    theta0, final = mlp().state_dict(), result.checkpoint(0)
    mask = result.mask(1)
    w = rewind_point["0.weight"][mask["0.weight"]]
    assert not torch.equal(w, theta0["0.weight"][mask["0.weight"]])
    assert not torch.equal(w, final["0.weight"][mask["0.weight"]])
    assert torch.count_nonzero(rewind_point["0.weight"][~mask["0.weight"]]) == 0


def test_standard_pruning_continues_from_final_weights(tmp_path):
    _, trainer, result = run(tmp_path, rounds=1, rewind="none")
    final, mask, start = result.checkpoint(0), result.mask(1), trainer.starts[1]
    for name in NAMES:
        assert torch.equal(start[name], final[name] * mask[name])


def test_resume_after_interruption_gives_identical_results(tmp_path):
    _, _, straight = run(tmp_path / "a", rounds=3)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", rounds=3, trainer=Trainer(fail_at_call=3))  # dies in round 2
    assert finished_rounds(tmp_path / "b") == [0, 1]
    _, trainer, resumed = run(tmp_path / "b", rounds=3)
    assert trainer.calls == 2  # only rounds 2 and 3 retrained
    for r in range(4):
        a = {k: v for k, v in straight.rounds[r].items() if k != "seconds"}
        b = {k: v for k, v in resumed.rounds[r].items() if k != "seconds"}
        assert a == b
        assert straight.mask(r) == resumed.mask(r)
        ca, cb = straight.checkpoint(r), resumed.checkpoint(r)
        assert all(torch.equal(ca[k], cb[k]) for k in ca)


def test_resume_refuses_a_different_config(tmp_path):
    run(tmp_path, rounds=0)
    with pytest.raises(ValueError, match="different config"):
        run(tmp_path, rounds=1, rewind="none")


def test_branch_shares_round0(tmp_path):
    _, _, base = run(tmp_path / "base", rounds=1, extra_rewind_points=(0.5,))
    target = branch_from_round0(tmp_path / "base", tmp_path / "r50", 0.5)
    _, trainer, branched = run(target, rounds=1, rewind=0.5)
    assert trainer.calls == 1 and branched.rounds[0]["accuracy"] == base.rounds[0]["accuracy"]
    _, _, direct = run(tmp_path / "direct", rounds=1, rewind=0.5)
    assert branched.mask(1) == direct.mask(1)
    assert branched.rounds[1]["accuracy"] == direct.rounds[1]["accuracy"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fraction"):
        iterative_magnitude_pruning(mlp(), Trainer(), evaluate, rounds=1, fraction=1.0, out_dir=tmp_path, names=NAMES)
    with pytest.raises(ValueError, match="rewind"):
        iterative_magnitude_pruning(mlp(), Trainer(), evaluate, rounds=1, fraction=0.2, out_dir=tmp_path,
                                    names=NAMES, rewind="start")
    with pytest.raises(ValueError, match="train_steps"):
        iterative_magnitude_pruning(mlp(), Trainer(), evaluate, rounds=1, fraction=0.2, out_dir=tmp_path,
                                    names=NAMES, rewind=0.1)
    with pytest.raises(ValueError, match="rounds"):
        iterative_magnitude_pruning(mlp(), Trainer(), evaluate, rounds=-1, fraction=0.2, out_dir=tmp_path, names=NAMES)


def test_reinitialize_and_shuffle():
    model = mlp()
    before = model[0].weight.detach().clone()
    shuffle_within_layers(model, ["0.weight"], seed=1)
    after = model[0].weight.detach()
    assert not torch.equal(after, before)
    assert torch.equal(torch.sort(after.flatten()).values, torch.sort(before.flatten()).values)
    bias = model[0].bias.detach().clone()
    reinitialize(model, ["0.weight"], seed=1, std=0.02)
    assert model[0].weight.std().item() == pytest.approx(0.02, rel=0.35)
    assert torch.equal(model[0].bias, bias)  # Chen et al.: only the named weights are drawn afresh
    reinitialize(model, ["0.weight"], seed=1, std=0.02, zero_biases=True)
    assert torch.count_nonzero(model[0].bias) == 0
    with pytest.raises(ValueError, match="zero_biases"):
        reinitialize(model, ["0.weight"], zero_biases=1)
    assert torch.equal(model[3].weight, mlp()[3].weight)  # other layers untouched


def test_winning_ticket_criterion():
    full = [0.80, 0.82, 0.84]  # mean 0.82, std 0.02 -> bar 0.80
    assert is_winning_ticket(full, [0.80, 0.81])["winning"]
    assert not is_winning_ticket(full, [0.78, 0.80])["winning"]
    best = highest_winning_sparsity(full, {0.5: [0.81, 0.82], 0.75: [0.805, 0.80], 0.9: [0.70, 0.72]})
    assert best["sparsity"] == 0.75
    assert highest_winning_sparsity(full, {0.5: [0.5]})["sparsity"] is None
