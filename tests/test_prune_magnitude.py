"""Magnitude and random masks: exact sparsity, ties, fraction of remaining vs all, prunable set, errors."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from compresslib.prune import Mask, lowest_k, magnitude_mask, prunable_names, prune_remaining, random_mask

TIES = torch.tensor([[0.5, -0.1, 0.2, -0.2], [0.3, -0.9, 0.1, 0.05], [-0.4, 0.2, 0.7, -0.3]])


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config)


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.9, 0.999])
def test_exact_sparsity(scope, sparsity):
    g = torch.Generator().manual_seed(3)
    weights = {"a": torch.randn(7, 11, generator=g), "b": torch.randn(13, generator=g), "c": torch.randn(3, 3, generator=g)}
    mask = magnitude_mask(weights, sparsity, scope=scope)
    if scope == "global":
        assert mask.num_zeros == round(sparsity * mask.numel)
    else:
        for name, w in weights.items():
            assert int((~mask[name]).sum()) == round(sparsity * w.numel())


def test_prunes_smallest_magnitudes_globally():
    weights = {"a": torch.tensor([0.1, -5.0, 0.3]), "b": torch.tensor([-0.2, 4.0, 0.05])}
    mask = magnitude_mask(weights, 0.5, scope="global")
    assert mask["a"].tolist() == [False, True, True] and mask["b"].tolist() == [False, True, False]


def test_ties_keep_strictly_greater_than_threshold():
    mask = magnitude_mask({"w": TIES}, 0.5, scope="layer")["w"]
    t = torch.sort(TIES.abs().flatten()).values[5]  # 0.2, tied three times
    assert torch.equal(mask, TIES.abs() > t)  # the '>' rule: exactly 6 pruned here
    assert int((~mask).sum()) == 6
    assert int((TIES.abs() >= t).sum()) == 9  # '>=' would keep the ties: only 3 pruned


def test_ties_straddling_the_cut_are_broken_by_position():
    w = torch.tensor([0.3, 0.1, 0.1, 0.1, 0.5])
    mask = magnitude_mask({"w": w}, 0.4, scope="layer")["w"]  # k = 2 of the three tied 0.1s
    assert mask.tolist() == [True, False, False, True, True]
    assert torch.equal(magnitude_mask({"w": w}, 0.4, scope="layer")["w"], mask)  # deterministic


def test_signed_value_is_not_magnitude():
    mask = magnitude_mask({"w": TIES}, 0.5, scope="layer")["w"]
    assert bool(mask[1, 1])
    assert not bool(mask[1, 3])  # 0.05 pruned


def test_fraction_of_remaining_not_of_all():
    previous = magnitude_mask({"w": TIES}, 0.5, scope="layer")
    trained = {"w": TIES * previous["w"]}
    mask = prune_remaining(trained, 0.5, previous, scope="layer")
    mask.check_shrinks(previous)
    assert mask.sparsity == pytest.approx(0.75)  # 6 kept -> 3 pruned more
    # p of *all* weights: the previous zeros fill the quota and nothing new is pruned
    assert magnitude_mask(trained, 0.5, scope="layer") == previous
    with pytest.raises(ValueError, match="only shrink"):
        magnitude_mask(trained, 0.25, scope="layer", previous=previous)


def test_imp_schedule_sparsity():
    g = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(40, 50, generator=g), "b": torch.randn(30, generator=g)}
    mask = None
    for r in range(1, 5):
        new = prune_remaining({n: w * (mask[n] if mask else 1) for n, w in weights.items()}, 0.2, mask)
        if mask is not None:
            new.check_shrinks(mask)
        mask = new
        assert mask.sparsity == pytest.approx(1 - 0.8**r, abs=2 / mask.numel)


def test_previously_pruned_stay_pruned_even_if_large():
    previous = Mask({"w": torch.tensor([0, 1, 1, 1])})
    w = {"w": torch.tensor([9.0, 1.0, 2.0, 3.0])}  # the pruned weight is large
    mask = prune_remaining(w, 0.34, previous)
    assert mask["w"].tolist() == [False, False, True, True]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_random_mask_exact_and_reproducible(scope):
    weights = {"a": torch.zeros(20, 10), "b": torch.zeros(50)}
    m1 = random_mask(weights, 0.6, scope=scope, seed=1)
    assert m1 == random_mask(weights, 0.6, scope=scope, seed=1)
    assert m1 != random_mask(weights, 0.6, scope=scope, seed=2)
    assert m1.num_zeros == round(0.6 * 250) if scope == "global" else m1.layer_sparsity() == {"a": 0.6, "b": 0.6}


def test_default_prunable_set_is_encoder_linear_weights():
    model = tiny_bert()
    names = prunable_names(model)
    assert len(names) == 2 * 6
    assert all(".encoder." in n and n.endswith(".weight") for n in names)
    assert not any("embeddings" in n or "classifier" in n or "pooler" in n or "LayerNorm" in n for n in names)
    mask = magnitude_mask(model, 0.5)
    assert list(mask) == names and mask.sparsity == pytest.approx(0.5, abs=1e-3)
    assert prunable_names(model, pattern=r"attention\.self") == [n for n in names if "attention.self" in n]
    assert "classifier.weight" in prunable_names(model, pattern=None)


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan"), "0.5", True])
def test_bad_sparsity(bad):
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask({"w": TIES}, bad)
    with pytest.raises(ValueError, match="sparsity"):
        random_mask({"w": TIES}, bad)


def test_bad_names_scope_and_shapes():
    model = tiny_bert()
    with pytest.raises(ValueError, match="unknown parameter names"):
        magnitude_mask(model, 0.5, names=["bert.encoder.nope.weight"])
    with pytest.raises(ValueError, match="unknown parameter names"):
        prunable_names(model, names=["nope"])
    with pytest.raises(ValueError, match="scope"):
        magnitude_mask({"w": TIES}, 0.5, scope="row")
    with pytest.raises(ValueError, match="shape"):
        prune_remaining({"w": TIES}, 0.5, Mask({"w": torch.ones(4, 3)}))
    with pytest.raises(ValueError, match="no nn.Linear"):
        prunable_names(torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.parametrize("k", [0, 1, 5, 17, 29, 30])
def test_sort_and_kthvalue_selections_agree_with_ties(k):
    g = torch.Generator().manual_seed(k)
    scores = torch.randint(0, 4, (30,), generator=g).float()  # many ties
    scores[3] = -torch.inf  # a previously pruned weight
    by_sort = lowest_k(scores, k, method="sort")
    assert torch.equal(by_sort, lowest_k(scores, k, method="kthvalue"))
    assert int((~by_sort).sum()) == k
