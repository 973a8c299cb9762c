"""The cost ledger on tiny hand-built models, every count checked against a hand computation: bytes at
fp32 / fp16 / int8 / k bits, CSR bytes (and the real torch CSR tensor), non-zeros, multiply-adds of a
linear layer, of attention and of a whole BERT at a given length; what sharing saves and what it does
not; the table's JSON and Markdown; bad input."""

import json

import pytest
import torch
from torch import nn

from compresslib.ledger import (
    Ledger,
    LedgerRow,
    build_ledger,
    compare_latency,
    count_multiply_adds,
    count_nonzero_parameters,
    count_parameters,
    csr_bytes,
    ledger_row,
    model_bytes,
    sparse_bytes,
    stored_tensors,
    tensor_bytes,
)
from compresslib.lowrank import factorize_linears
from compresslib.prune import Mask, apply_mask
from compresslib.quantize import QuantizedLinear, cast, dynamic_int8, quantize_linears
from compresslib.share import layer_groups, share_layers
from tiny_models import HIDDEN, INTERMEDIATE, tiny_bert, token_batch


def two_layers():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # 12 + 3 + 6 + 2 = 23 parameters


def test_tensor_bytes_at_each_precision():
    assert [tensor_bytes(10, bits) for bits in (32, 16, 8, 4, 3, 2)] == [40, 20, 10, 5, 4, 3]
    assert tensor_bytes(0, 4) == 0
    for bad in ((-1, 8), (10, 0), (10, 2.5), (True, 8)):
        with pytest.raises(ValueError):
            tensor_bytes(*bad)


def test_dense_bytes_at_the_storage_precision():
    model = two_layers()
    assert count_parameters(model) == 23
    assert model_bytes(model) == 23 * 4
    assert model_bytes(cast(model, torch.float16)) == 23 * 2
    assert model_bytes(cast(model, torch.bfloat16)) == 23 * 2
    assert count_parameters(cast(model, torch.float16)) == 23


def test_k_bit_bytes_are_the_packed_codes_plus_scales_and_equal_the_stored_buffers():
    model = two_layers()
    four = quantize_linears(model, 4)  # per channel, symmetric: codes + one float32 scale per row
    assert model_bytes(four) == (6 + 3 * 4) + 3 * 4 + (3 + 2 * 4) + 2 * 4
    three = quantize_linears(model, 3, symmetric=False, per_channel=False)  # + one uint8 zero point
    assert model_bytes(three) == (5 + 4 + 1) + 3 * 4 + (3 + 4 + 1) + 2 * 4
    for quantized in (four, three):
        stored = sum(b.nbytes for b in quantized.buffers()) + sum(p.nbytes for p in quantized.parameters())
        assert model_bytes(quantized) == stored  # what the state_dict really holds
        assert count_parameters(quantized) == 23


def test_torch_int8_bytes_count_one_byte_a_weight_plus_pytorchs_scales():
    model = two_layers()
    per_tensor = dynamic_int8(model, per_channel=False)  # a float64 scale and an int64 zero point per tensor
    assert model_bytes(per_tensor) == (12 + 16) + 3 * 4 + (6 + 16) + 2 * 4
    per_channel = dynamic_int8(model, per_channel=True)  # one pair per output row
    assert model_bytes(per_channel) == (12 + 3 * 16) + 3 * 4 + (6 + 2 * 16) + 2 * 4
    assert count_parameters(per_tensor) == 23
    assert {t.name for t in stored_tensors(per_tensor)} == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_shared_tensors_are_counted_once_but_cost_multiply_adds_at_every_use():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert count_parameters(model) == 20 and model_bytes(model) == 80
    x = torch.randn(1, 5, 4)
    assert count_multiply_adds(model, inputs=x) == 2 * 5 * 4 * 4


def test_nonzero_parameters_count_exact_zeros_and_zero_codes():
    model = two_layers()
    with torch.no_grad():
        model[0].weight[0] = 0
        model[2].bias.zero_()
    assert count_nonzero_parameters(model) == 23 - 4 - 2
    assert count_nonzero_parameters(quantize_linears(model, 8)) == 23 - 4 - 2
    asymmetric = quantize_linears(model, 8, symmetric=False)
    assert count_nonzero_parameters(asymmetric) == 23 - 4 - 2  # zero is code z, not code 0
    assert count_nonzero_parameters(dynamic_int8(model)) == 23 - 4 - 2


def masked_two_layers():
    model = two_layers()
    keep = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)  # 5 of 12 kept
    mask = Mask({"0.weight": keep})
    apply_mask(model, mask)
    return model, mask


@pytest.mark.filterwarnings("ignore:Sparse")
def test_csr_bytes_match_the_formula_and_a_real_int32_csr_tensor():
    model, mask = masked_two_layers()
    weight = model[0].weight.detach()
    assert csr_bytes((3, 4), 5, 32) == 5 * 4 + 5 * 4 + (3 + 1) * 4
    csr = weight.to_sparse_csr()
    real = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), size=weight.shape)
    assert real.values().numel() == 5
    real_bytes = sum(t.numel() * t.element_size() for t in (real.crow_indices(), real.col_indices(), real.values()))
    assert csr_bytes((3, 4), 5, 32) == real_bytes
    assert csr_bytes((10,), 3, 8) == 3 + 12 + 8  # a vector is one row
    assert sparse_bytes(model, mask) == 56 + (3 + 6 + 2) * 4
    assert model_bytes(model) == 23 * 4
    four = quantize_linears(model, 4)
    assert sparse_bytes(four, mask) == (3 + 20 + 16) + 3 * 4 + 3 * 4 + (3 + 2 * 4) + 2 * 4
    assert sparse_bytes(dynamic_int8(model, per_channel=False), mask) == (5 + 20 + 16) + 16 + 3 * 4 + (6 + 16) + 2 * 4


def test_csr_beats_dense_only_past_half_sparsity_for_float32():
    assert csr_bytes((100, 100), 5000, 32) > tensor_bytes(10000, 32)
    assert csr_bytes((100, 100), 4900, 32) < tensor_bytes(10000, 32)


def test_a_mask_must_fit_and_be_applied():
    model, mask = masked_two_layers()
    with torch.no_grad():
        model[0].weight[1, 1] = 0.5  # pruned by the mask but not zero
    with pytest.raises(ValueError, match="apply the mask"):
        sparse_bytes(model, mask)
    with pytest.raises(ValueError, match="does not store"):
        sparse_bytes(two_layers(), Mask({"1.weight": torch.ones(3, 4)}))
    with pytest.raises(ValueError, match="shape"):
        sparse_bytes(two_layers(), Mask({"0.weight": torch.ones(4, 3)}))
    with pytest.raises(ValueError, match="compresslib.prune.Mask"):
        sparse_bytes(two_layers(), {"0.weight": torch.ones(3, 4)})


def test_multiply_adds_of_linear_layers_at_any_length():
    model = two_layers()
    assert count_multiply_adds(model, inputs=torch.randn(1, 7, 4)) == 7 * (4 * 3 + 3 * 2)
    assert count_multiply_adds(model, inputs=torch.randn(2, 7, 4)) == 2 * 7 * (4 * 3 + 3 * 2)
    assert count_multiply_adds(quantize_linears(model, 4), inputs=torch.randn(1, 7, 4)) == 7 * 18
    assert count_multiply_adds(dynamic_int8(model), inputs=torch.randn(1, 7, 4)) == 7 * 18


def bert_multiply_adds(n, layers=2, hidden=HIDDEN, ffn=INTERMEDIATE, labels=2):
    """Per layer: Q, K, V and the attention output (4 n H^2), the FFN (2 n H I), and the attention
    matrices QK^T and the weighted sum of V (2 n^2 H); then the pooler and classifier on one token."""
    return layers * (4 * n * hidden**2 + 2 * n * hidden * ffn + 2 * n * n * hidden) + hidden**2 + hidden * labels


@pytest.mark.parametrize("n", [1, 7, 16])
def test_multiply_adds_of_a_bert_at_a_given_length(n):
    model = tiny_bert()
    assert count_multiply_adds(model, n) == bert_multiply_adds(n)
    assert count_multiply_adds(cast(model, torch.float16), n) == bert_multiply_adds(n)
    low_rank = factorize_linears(model, rank=4)  # each FFN matrix: 4 (16 + 32) instead of 16 x 32
    saved = 2 * 2 * n * (HIDDEN * INTERMEDIATE - 4 * (HIDDEN + INTERMEDIATE))
    assert count_multiply_adds(low_rank, n) == bert_multiply_adds(n) - saved
    assert count_multiply_adds(model, inputs=token_batch(batch=3, length=n)) == 3 * bert_multiply_adds(n)


def test_pruned_heads_cost_less_attention():
    from compresslib.prune import prune_heads

    model = prune_heads(tiny_bert(), {0: [1, 3]})  # half of layer 0's heads: its Q, K, V, output and attention halve
    n = 7
    assert count_multiply_adds(model, n) == bert_multiply_adds(n) - (2 * n * HIDDEN**2 + n * n * HIDDEN)


def test_sharing_saves_parameters_and_bytes_but_not_multiply_adds():
    teacher = tiny_bert(layers=4)
    shared = share_layers(teacher)
    assert layer_groups(shared) == [[0, 1, 2, 3]]
    dense, saved = ledger_row("teacher", teacher, seq_len=8), ledger_row("shared", shared, seq_len=8)
    per_layer = sum(p.numel() for p in teacher.bert.encoder.layer[0].parameters())
    assert dense.parameters - saved.parameters == 3 * per_layer
    assert dense.bytes - saved.bytes == 3 * per_layer * 4
    assert dense.multiply_adds == saved.multiply_adds == bert_multiply_adds(8, layers=4)


def test_a_row_collects_every_count():
    model, mask = masked_two_layers()
    row = ledger_row("pruned", model, mask=mask, inputs=torch.randn(1, 3, 4), seq_len=3, accuracy=0.75,
                     latency=(0.02, 1.5), note="hand-built")
    assert row == LedgerRow(name="pruned", parameters=23, nonzero_parameters=23 - 7, bytes=92, multiply_adds=3 * 18,
                            seq_len=3, bytes_sparse=56 + 44, latency_s=0.02, speedup=1.5, accuracy=0.75, note="hand-built")
    assert ledger_row("bytes by hand", two_layers(), inputs=torch.randn(1, 1, 4), count_bytes=lambda m: 7).bytes == 7


def test_the_ledger_round_trips_through_json_and_renders_markdown(tmp_path):
    teacher = tiny_bert()
    models = {"teacher": teacher, "shared": share_layers(teacher), "4-bit": quantize_linears(teacher, 4)}
    ledger = build_ledger(models, seq_len=8, evaluate=lambda m: 0.5, notes={"shared": "one layer"})
    assert [r.name for r in ledger.rows] == list(models) and ledger["shared"].note == "one layer"
    assert all(r.latency_s is None and r.accuracy == 0.5 for r in ledger.rows)
    path = ledger.save(tmp_path / "ledger.json")
    assert Ledger.load(path) == ledger
    assert json.loads(path.read_text())["sparse_format"].startswith("CSR")
    table = ledger.to_markdown()
    lines = table.splitlines()
    assert len(lines) == 2 + 3 and lines[0].startswith("| model | parameters")
    assert "latency" not in lines[0] and "accuracy" in lines[0] and "bytes, CSR" not in lines[0]
    assert "| teacher |" in table and "50.0%" in table
    ratio = ledger["teacher"].bytes / ledger["4-bit"].bytes
    assert f"{ratio:.2f}" in lines[4]
    with pytest.raises(ValueError, match="already has a row"):
        ledger.add(ledger["shared"])
    with pytest.raises(KeyError, match="no ledger row"):
        ledger["missing"]


def test_latency_is_measured_interleaved_against_the_baseline():
    models = {"small": two_layers(), "large": nn.Sequential(nn.Linear(4, 512), nn.Linear(512, 2))}

    class Wrap(nn.Module):  # the timing loop passes a batch's fields as keyword arguments
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    models = {name: Wrap(m) for name, m in models.items()}
    batch = {"x": torch.randn(64, 4)}
    times = compare_latency(models, batch, baseline="small", rounds=2, repeats=2)
    assert set(times) == {"small", "large"} and times["small"][1] == 1.0
    assert times["large"][1] == pytest.approx(times["small"][0] / times["large"][0])
    with pytest.raises(ValueError, match="baseline"):
        compare_latency(models, batch, baseline="medium")


def test_a_timed_ledger_compares_every_model_with_the_baseline():
    teacher = tiny_bert()
    models = {"teacher": teacher, "shared": share_layers(teacher)}
    ledger = build_ledger(models, seq_len=4, batch=token_batch(batch=2, length=4), rounds=1, repeats=1)
    assert ledger["teacher"].speedup == 1.0 and ledger["shared"].latency_s > 0
    assert ledger["shared"].speedup == pytest.approx(ledger["teacher"].latency_s / ledger["shared"].latency_s)
    assert "speed-up" in ledger.to_markdown().splitlines()[0]


def test_bad_input_is_named():
    model = tiny_bert()
    for seq_len in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="seq_len"):
            count_multiply_adds(model, seq_len)
    with pytest.raises(ValueError, match="exactly one of seq_len"):
        count_multiply_adds(model, 8, inputs=token_batch())
    with pytest.raises(ValueError, match="pass inputs="):
        count_multiply_adds(two_layers(), 8)
    with pytest.raises(ValueError, match="nn.Module"):
        model_bytes({"w": torch.ones(3)})
    with pytest.raises(ValueError, match="not in models"):
        build_ledger({"a": model}, masks={"b": Mask()})
    with pytest.raises(ValueError, match="nnz"):
        csr_bytes((2, 2), 5, 32)
    with pytest.raises(ValueError, match="unknown ledger fields"):
        LedgerRow.from_dict({"name": "x", "size": 1})
