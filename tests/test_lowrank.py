"""Low-rank factorisation: Eckart-Young, the balanced split, full rank, the energy rule, the counts and
the break-even rank, chosen layers of an encoder, fine-tuning after factorisation, errors."""

import pytest
import torch
from torch import nn

from compresslib.lowrank import (
    ATTENTION_PATTERN,
    FFN_PATTERN,
    LowRankLinear,
    break_even_rank,
    energy_ranks,
    factorize_linear,
    factorize_linears,
    factorized_ranks,
    linear_parameter_count,
    low_rank_factors,
    low_rank_multiply_adds,
    low_rank_parameter_count,
    rank_for_energy,
    retained_energy,
    singular_value_spectra,
)
from compresslib.training import fit
from tiny_models import HIDDEN, INTERMEDIATE, tiny_bert, token_batch


def matrix(rows=12, cols=8, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("shape", [(12, 8), (8, 12), (10, 10)])
@pytest.mark.parametrize("rank", [1, 3, 7])
def test_factors_give_the_best_rank_r_approximation(shape, rank):
    """Eckart-Young: ||W - A B||_F^2 equals the sum of the squared singular values dropped."""
    w = matrix(*shape)
    a, b = low_rank_factors(w, rank)
    assert a.shape == (shape[0], rank) and b.shape == (rank, shape[1])
    sigma = torch.linalg.svdvals(w)
    assert torch.allclose((w - a @ b).pow(2).sum(), sigma[rank:].pow(2).sum())
    assert torch.linalg.matrix_rank(a @ b) == rank


def test_square_roots_of_the_singular_values_sit_on_each_side():
    w = matrix()
    a, b = low_rank_factors(w, 5)
    sigma = torch.linalg.svdvals(w)[:5]
    assert torch.allclose(a.T @ a, torch.diag(sigma), atol=1e-10)  # all on U would give sigma^2 here
    assert torch.allclose(b @ b.T, torch.diag(sigma), atol=1e-10)  # and the identity here


def test_full_rank_reproduces_the_layer():
    torch.manual_seed(0)
    linear = nn.Linear(8, 5)
    layer = factorize_linear(linear, 5)
    x = torch.randn(3, 4, 8)
    assert isinstance(layer, LowRankLinear) and layer.rank == 5
    assert torch.allclose(layer(x), linear(x), atol=1e-5)
    assert layer.v.weight.shape == (5, 8) and layer.u.weight.shape == (5, 5) and layer.v.bias is None
    assert torch.equal(layer.u.bias, linear.bias)
    assert torch.allclose(layer.weight_product(), linear.weight, atol=1e-5)


def test_a_factorised_layer_applies_v_first_then_u():
    torch.manual_seed(1)
    linear = nn.Linear(10, 4)
    layer = factorize_linear(linear, 2)
    x = torch.randn(6, 10)
    expected = x @ (layer.u.weight @ layer.v.weight).T + linear.bias
    assert torch.allclose(layer(x), expected, atol=1e-6)
    a, b = low_rank_factors(linear.weight, 2)
    assert torch.allclose(layer.weight_product(), a @ b, atol=1e-6)


def test_energy_rule_picks_the_smallest_rank():
    sigma = torch.tensor([3.0, 2.0, 1.0])  # squares 9, 4, 1 of 14
    assert rank_for_energy(sigma, 9 / 14) == 1  # met exactly at rank 1
    assert rank_for_energy(sigma, 9 / 14 + 1e-6) == 2
    assert rank_for_energy(sigma, 13 / 14) == 2
    assert rank_for_energy(sigma, 0.99) == 3
    assert rank_for_energy(sigma, 1.0) == 3
    assert rank_for_energy(sigma, 0.1) == 1
    assert torch.allclose(retained_energy(sigma), torch.tensor([9 / 14, 13 / 14, 1.0], dtype=torch.float64))
    linear = nn.Linear(8, 6)
    sigma = torch.linalg.svdvals(linear.weight.detach().double())
    for energy in (0.3, 0.8, 0.95):
        r = factorize_linear(linear, energy=energy).rank
        kept = sigma.pow(2).cumsum(0) / sigma.pow(2).sum()
        assert kept[r - 1] >= energy and (r == 1 or kept[r - 2] < energy)


@pytest.mark.parametrize("n_in,n_out,rank", [(384, 1536, 64), (384, 384, 191), (7, 3, 2)])
def test_parameter_and_multiply_add_counts(n_in, n_out, rank):
    layer = LowRankLinear(n_in, n_out, rank)
    assert sum(p.numel() for p in layer.parameters()) == low_rank_parameter_count(n_in, n_out, rank)
    assert low_rank_parameter_count(n_in, n_out, rank) == rank * (n_in + n_out) + n_out
    assert low_rank_parameter_count(n_in, n_out, rank, bias=False) == rank * (n_in + n_out)
    assert linear_parameter_count(n_in, n_out) == sum(p.numel() for p in nn.Linear(n_in, n_out).parameters())
    assert low_rank_multiply_adds(n_in, n_out, rank) == rank * (n_in + n_out)


@pytest.mark.parametrize("n_in,n_out,expected", [(384, 1536, 307), (384, 384, 191), (4, 4, 1), (5, 1, 0), (1536, 384, 307)])
def test_break_even_rank_is_the_last_rank_that_saves_parameters(n_in, n_out, expected):
    r = break_even_rank(n_in, n_out)
    assert r == expected
    assert (r + 1) * (n_in + n_out) >= n_in * n_out
    assert r == 0 or r * (n_in + n_out) < n_in * n_out


def test_factorize_linears_replaces_only_the_chosen_layers_of_a_copy():
    model = tiny_bert()
    ffn = factorize_linears(model, rank=4)
    ranks = factorized_ranks(ffn)
    assert sorted(ranks) == sorted(f"bert.encoder.layer.{i}.{part}.dense" for i in range(2) for part in ("intermediate", "output"))
    assert set(ranks.values()) == {4}
    assert isinstance(ffn.bert.encoder.layer[0].attention.self.query, nn.Linear)
    assert isinstance(model.bert.encoder.layer[0].intermediate.dense, nn.Linear)  # the original is untouched
    attention = factorize_linears(model, energy=0.9, pattern=ATTENTION_PATTERN)
    assert len(factorized_ranks(attention)) == 2 * 4
    assert factorized_ranks(attention) == {n: r for n, r in energy_ranks(model, 0.9, ATTENTION_PATTERN).items()}
    with torch.no_grad():
        full = factorize_linears(model, rank=HIDDEN, pattern=FFN_PATTERN)  # full rank of 16 x 32 and 32 x 16
        batch = token_batch()
        assert torch.allclose(full(**batch).logits, model(**batch).logits, atol=1e-5)


def test_factorize_linears_takes_a_students_factorizer():
    """Notebook 04 passes the student's factorize_linear (the library's is locked in the student kit): it is
    called once per chosen layer with that layer and its rank (the energy rule's rank chosen here)."""
    model = tiny_bert()
    calls = []

    def student(linear, rank):
        calls.append((linear.out_features, linear.in_features, rank))
        return factorize_linear(linear, rank)

    theirs = factorize_linears(model, rank=4, factorizer=student)
    assert sorted(calls) == sorted([(INTERMEDIATE, HIDDEN, 4), (HIDDEN, INTERMEDIATE, 4)] * 2)
    ours = factorize_linears(model, rank=4)
    with torch.no_grad():
        batch = token_batch()
        assert torch.equal(theirs(**batch).logits, ours(**batch).logits)
    calls.clear()
    by_energy = factorize_linears(model, energy=0.9, factorizer=student)
    assert factorized_ranks(by_energy) == energy_ranks(model, 0.9, FFN_PATTERN)
    assert [rank for *_, rank in calls] == list(energy_ranks(model, 0.9, FFN_PATTERN).values())
    with pytest.raises(ValueError, match="nn.Module"):
        factorize_linears(model, rank=4, factorizer=lambda linear, rank: linear.weight)
    with pytest.raises(ValueError, match="exactly one of rank or energy"):
        factorize_linears(model, factorizer=student)


def test_a_factorised_model_fine_tunes_with_fit():
    model = factorize_linears(tiny_bert(), rank=3)
    model.train()
    layer = model.bert.encoder.layer[0].intermediate.dense
    u_before, v_before = layer.u.weight.detach().clone(), layer.v.weight.detach().clone()
    batch = {**token_batch(batch=8), "labels": torch.tensor([0, 1] * 4)}
    history = fit(model, [batch], epochs=3, lr=1e-2, warmup_fraction=0.0, desc="test")
    assert len(history) == 3 and all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert not torch.equal(layer.u.weight, u_before) and not torch.equal(layer.v.weight, v_before)


def test_spectra_are_the_singular_values_of_the_chosen_weights():
    model = tiny_bert()
    spectra = singular_value_spectra(model, FFN_PATTERN)
    assert len(spectra) == 4
    weight = model.bert.encoder.layer[1].output.dense.weight
    values = spectra["bert.encoder.layer.1.output.dense"]
    assert values.shape == (min(HIDDEN, INTERMEDIATE),)
    assert torch.allclose(values, torch.linalg.svdvals(weight.detach().double()))


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rank", [0, -1, 9, 2.0, True, None])
def test_ranks_outside_1_to_min_dims_are_refused(rank):
    with pytest.raises(ValueError, match="rank"):
        factorize_linear(nn.Linear(8, 12), rank)
    if rank is not None:
        with pytest.raises(ValueError, match="rank"):
            low_rank_parameter_count(8, 12, rank)


def test_other_bad_input_is_named():
    with pytest.raises(ValueError, match="exactly one of rank or energy"):
        factorize_linear(nn.Linear(4, 4), 2, energy=0.5)
    for energy in (0.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="energy"):
            factorize_linear(nn.Linear(4, 4), energy=energy)
    with pytest.raises(ValueError, match="nn.Linear"):
        factorize_linear(nn.Conv1d(2, 2, 1), 1)
    with pytest.raises(ValueError, match="floating-point"):
        low_rank_factors(torch.ones(3, 3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="matrix"):
        low_rank_factors(torch.ones(3), 1)
    with pytest.raises(ValueError, match="decreasing"):
        rank_for_energy(torch.tensor([1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match=r"rank \(for bert.encoder.layer.0.intermediate.dense\)"):
        factorize_linears(tiny_bert(), rank=17)  # 17 > min(16, 32)
    with pytest.raises(ValueError, match="in_features"):
        break_even_rank(0, 4)
