"""Keeping pruned weights at zero: AdamW with momentum and weight decay, state_dict, deepcopy,
and the torch.nn.utils.prune round trip."""

import copy

import pytest
import torch
from torch import nn

from compresslib.prune import (
    Mask,
    MaskEnforcer,
    apply_mask,
    export_to_torch_prune,
    import_from_torch_prune,
    magnitude_mask,
    make_permanent,
)

NAMES = ["0.weight", "2.weight"]


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)


def train(model, steps, after_step=None, optimizer=None):
    x, y = data()
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if after_step is not None:
            after_step(model)
    return optimizer


def pruned_values(model, mask):
    params = dict(model.named_parameters())
    return torch.cat([params[n].detach()[~mask[n]] for n in mask])


def test_enforcer_keeps_pruned_weights_exactly_zero_through_adamw():
    model = mlp()
    # momentum built up before pruning: stale exp_avg would move pruned weights if not re-zeroed
    optimizer = train(model, 3)
    mask = magnitude_mask(model, 0.6, names=NAMES)
    enforcer = MaskEnforcer(model, mask)
    survivors_before = dict(model.named_parameters())["0.weight"].detach().clone()
    train(model, 10, after_step=enforcer, optimizer=optimizer)
    enforcer.remove()
    assert torch.count_nonzero(pruned_values(model, mask)) == 0
    w = dict(model.named_parameters())["0.weight"].detach()
    assert not torch.equal(w[mask["0.weight"]], survivors_before[mask["0.weight"]])  # survivors did train


def test_gradients_of_pruned_weights_are_zeroed():
    model = mlp()
    mask = magnitude_mask(model, 0.5, names=NAMES)
    with MaskEnforcer(model, mask):
        x, y = data()
        nn.functional.cross_entropy(model(x), y).backward()
        grad = model[0].weight.grad
        assert torch.count_nonzero(grad[~mask["0.weight"]]) == 0
    # hooks removed on exit
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    assert torch.count_nonzero(model[0].weight.grad[~mask["0.weight"]]) > 0


def test_mask_applied_once_lets_weights_regrow():
    """The catalogued mistake: masking before training only."""
    model = mlp()
    mask = magnitude_mask(model, 0.6, names=NAMES)
    apply_mask(model, mask)
    train(model, 5)
    assert torch.count_nonzero(pruned_values(model, mask)) > 0


def test_zeros_survive_state_dict_and_deepcopy(tmp_path):
    model = mlp()
    mask = magnitude_mask(model, 0.5, names=NAMES)
    enforcer = MaskEnforcer(model, mask)
    train(model, 3, after_step=enforcer)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    fresh = mlp()
    fresh.load_state_dict(torch.load(tmp_path / "model.pt"))
    assert torch.count_nonzero(pruned_values(fresh, mask)) == 0
    clone = copy.deepcopy(model)
    assert torch.count_nonzero(pruned_values(clone, mask)) == 0
    x, _ = data()
    assert torch.equal(clone(x), model(x)) and torch.equal(fresh(x), model(x))
    Mask.from_weights(fresh, NAMES).check_shrinks(mask)  # every pruned weight is still zero after loading


def test_torch_prune_round_trip():
    model = mlp()
    mask = magnitude_mask(model, 0.5, names=NAMES)
    reference = apply_mask(copy.deepcopy(model), mask)
    export_to_torch_prune(model, mask)
    assert hasattr(model[0], "weight_orig") and hasattr(model[0], "weight_mask")
    assert import_from_torch_prune(model) == mask
    x, _ = data()
    assert torch.allclose(model(x), reference(x))
    # the re-parametrised model survives state_dict save/load (weight_mask is a buffer); torch itself
    # refuses to deepcopy it (the computed ``weight`` is not a graph leaf), so deepcopy before exporting
    fresh = export_to_torch_prune(mlp(), Mask.ones_like(mlp(), NAMES))
    fresh.load_state_dict(model.state_dict())
    assert import_from_torch_prune(fresh) == mask
    assert torch.allclose(fresh(x), reference(x))
    make_permanent(model)
    assert not hasattr(model[0], "weight_orig") and isinstance(model[0].weight, nn.Parameter)
    assert torch.count_nonzero(pruned_values(model, mask)) == 0
    with pytest.raises(ValueError, match="no torch.nn.utils.prune"):
        import_from_torch_prune(model)


def test_import_mask_made_by_torch_prune():
    model = mlp()
    torch.nn.utils.prune.l1_unstructured(model[2], "weight", amount=0.25)
    mask = import_from_torch_prune(model)
    assert list(mask) == ["2.weight"] and mask.num_zeros == 6


def test_errors_unknown_names_and_shapes():
    model = mlp()
    with pytest.raises(ValueError, match="does not have"):
        apply_mask(model, Mask({"9.weight": torch.ones(2, 2)}))
    with pytest.raises(ValueError, match="shape"):
        apply_mask(model, Mask({"0.weight": torch.ones(6, 8)}))
    with pytest.raises(ValueError, match="Mask"):
        apply_mask(model, {"0.weight": torch.ones(8, 6)})
    with pytest.raises(ValueError, match="not a parameter"):
        export_to_torch_prune(model, Mask({"9.weight": torch.ones(2, 2)}))
