"""The Mask type: only 0/1, sparsity per layer and global, only shrinks, files, state_dict, deepcopy."""

import copy

import pytest
import torch

from compresslib.prune import Mask


def make():
    return Mask({"a": torch.tensor([[1, 0], [0, 0]]), "b": torch.tensor([1.0, 1.0, 0.0, 1.0])})


def test_holds_only_zero_one():
    with pytest.raises(ValueError, match="only 0 and 1"):
        Mask({"a": torch.tensor([1.0, 0.5])})
    with pytest.raises(ValueError, match="only 0 and 1"):
        make()["b"] = torch.tensor([2, 0, 1, 1])
    with pytest.raises(ValueError, match="non-finite"):
        Mask({"a": torch.tensor([float("nan")])})
    assert make()["a"].dtype == torch.bool


def test_sparsity_global_and_per_layer():
    mask = make()
    assert mask.numel == 8 and mask.num_zeros == 4
    assert mask.sparsity == pytest.approx(0.5)
    assert mask.density == pytest.approx(0.5)
    assert mask.layer_sparsity() == {"a": 0.75, "b": 0.25}
    assert Mask().sparsity == 0.0


def test_only_shrinks():
    previous = make()
    smaller = Mask({"a": torch.tensor([[0, 0], [0, 0]]), "b": torch.tensor([1, 0, 0, 1])})
    smaller.check_shrinks(previous)
    regrown = Mask({"a": torch.tensor([[1, 1], [0, 0]]), "b": torch.tensor([1, 1, 0, 1])})
    with pytest.raises(ValueError, match="may only shrink"):
        regrown.check_shrinks(previous)
    with pytest.raises(ValueError, match="different parameters"):
        Mask({"a": previous["a"]}).check_shrinks(previous)


def test_ones_like_and_from_weights():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    ones = Mask.ones_like(model, ["0.weight"])
    assert list(ones) == ["0.weight"] and ones.sparsity == 0.0
    with torch.no_grad():
        model[0].weight[0, 0] = 0
    assert Mask.from_weights(model, ["0.weight"]).num_zeros == 1
    with pytest.raises(ValueError, match="unknown parameter names"):
        Mask.ones_like(model, ["nope.weight"])


def test_save_load_state_dict_and_deepcopy(tmp_path):
    mask = make()
    mask.save(tmp_path / "m.safetensors")
    assert Mask.load(tmp_path / "m.safetensors") == mask
    assert Mask.from_state_dict(mask.state_dict()) == mask
    assert all(v.dtype == torch.uint8 for v in mask.state_dict().values())
    clone = copy.deepcopy(mask)
    assert clone == mask
    clone["a"] = torch.zeros(2, 2)
    assert clone != mask  # a deep copy, not a view
