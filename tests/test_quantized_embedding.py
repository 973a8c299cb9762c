"""The k-bit word-embedding table and 16-bit weight rounding: each looked-up row is its row's closed-form
reading s_i q_i, the bytes the ledger counts are the packed codes plus one scale per row, and only the
word table is replaced; rounding to fp16 / bf16 holds the values a cast model holds."""

import math

import pytest
import torch
from torch import nn

from compresslib.ledger import count_parameters, model_bytes, stored_tensors
from compresslib.quantize import (
    QuantizedEmbedding,
    cast,
    dequantize,
    quantize,
    quantize_word_embeddings,
    round_weights,
)
from tiny_models import HIDDEN, VOCAB, tiny_bert, token_batch


def table(rows=11, width=8, seed=0):
    torch.manual_seed(seed)
    return nn.Embedding(rows, width)


@pytest.mark.parametrize("bits, width, symmetric", [(4, 8, True), (8, 8, True), (2, 8, False), (3, 5, True),
                                                    (5, 6, False)])
def test_each_looked_up_row_is_its_rows_reading(bits, width, symmetric):
    """Per-row scales: row i is s_i q_i (or s_i (q_i - z_i)), whichever path reads it (whole bytes or not)."""
    embedding = table(width=width)
    quantized = QuantizedEmbedding.from_embedding(embedding, bits, symmetric=symmetric)
    expected = dequantize(quantize(embedding.weight, bits, symmetric=symmetric, per_channel=True))
    ids = torch.tensor([[3, 0, 10], [3, 7, 1]])
    torch.testing.assert_close(quantized(ids), expected[ids], rtol=0, atol=0)
    step = quantize(embedding.weight, bits, symmetric=symmetric).scale[:, None]
    assert bool(((quantized(torch.arange(11)) - embedding.weight).abs() <= step / 2 + 1e-7).all())  # half a step


def test_one_scale_per_row_not_per_column():
    """A row of small values keeps its resolution: with one scale per column it would read back as zeros."""
    embedding = table(rows=2, width=8)
    with torch.no_grad():
        embedding.weight[0] = 1e-3 * torch.arange(1, 9)
        embedding.weight[1] = 10.0 * torch.arange(1, 9)
    read = QuantizedEmbedding.from_embedding(embedding, 4)(torch.tensor([0]))
    assert bool((read != 0).all())
    torch.testing.assert_close(read[0], embedding.weight[0], atol=1e-3 * 8 / 7 / 2, rtol=0)


def test_the_ledger_counts_packed_codes_and_one_scale_per_row():
    model = tiny_bert()
    four = quantize_word_embeddings(model, 4)
    dense = model_bytes(model)
    word = VOCAB * HIDDEN
    assert model_bytes(four) == dense - 4 * word + math.ceil(word * 4 / 8) + 4 * VOCAB
    assert count_parameters(four) == count_parameters(model)
    stored = {t.name: t for t in stored_tensors(four)}
    assert stored["bert.embeddings.word_embeddings.weight"].bits == 4
    assert model_bytes(four) == (sum(b.nbytes for b in four.buffers() if b.dtype != torch.long)
                                 + sum(p.nbytes for p in four.parameters()))


def test_only_the_word_table_is_replaced_and_the_model_still_runs():
    model = tiny_bert()
    eight = quantize_word_embeddings(model, 8)
    assert isinstance(eight.get_input_embeddings(), QuantizedEmbedding)
    assert isinstance(eight.bert.embeddings.position_embeddings, nn.Embedding)
    assert isinstance(model.get_input_embeddings(), nn.Embedding)  # a copy: the original is untouched
    batch = token_batch()
    with torch.no_grad():
        torch.testing.assert_close(eight(**batch).logits, model(**batch).logits, atol=2e-2, rtol=0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="bits"):
        quantize_word_embeddings(tiny_bert(), 9)
    with pytest.raises(ValueError, match="nn.Embedding"):
        QuantizedEmbedding.from_embedding(nn.Linear(3, 3), 4)
    with pytest.raises(ValueError, match="per-row"):
        QuantizedEmbedding(quantize(table().weight, 4, per_channel=False))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rounded_weights_hold_the_cast_models_values_in_float32(dtype):
    model = tiny_bert()
    rounded, casted = round_weights(model, dtype), cast(model, dtype)
    for (name, r), (_, c), (_, original) in zip(rounded.named_parameters(), casted.named_parameters(),
                                                model.named_parameters()):
        assert r.dtype == torch.float32
        torch.testing.assert_close(r, c.float(), rtol=0, atol=0, msg=name)
    assert any(not torch.equal(r, o) for r, o in zip(rounded.parameters(), model.parameters()))
    with pytest.raises(ValueError, match="dtype"):
        round_weights(model, torch.int8)
