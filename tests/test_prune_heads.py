"""Head pruning on a tiny random BERT: importance shape, selection, physical removal equals zeroing."""

import copy

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from compresslib.prune import count_heads, head_importance, heads_to_prune, prune_heads


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config).eval()


def batches():
    g = torch.Generator().manual_seed(1)
    return [{"input_ids": torch.randint(1, 50, (4, 7), generator=g), "attention_mask": torch.ones(4, 7, dtype=torch.long),
             "labels": torch.randint(0, 2, (4,), generator=g)} for _ in range(2)]


def test_importance_and_selection():
    importance = head_importance(tiny_bert(), batches())
    assert importance.shape == (2, 4) and (importance >= 0).all()
    chosen = heads_to_prune(importance, 0.5)
    assert sum(len(h) for h in chosen.values()) == 4
    # the least important heads are chosen (ties by position), at least one head left per layer
    assert heads_to_prune(torch.tensor([[1.0, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]]), 0.5) == {0: [0], 1: [0, 1, 2]}
    with pytest.raises(ValueError, match="fraction"):
        heads_to_prune(importance, 1.0)


def test_pruning_heads_equals_zeroing_their_values():
    model = tiny_bert()
    heads = {0: [1, 3], 1: [0]}
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        for layer, hs in heads.items():
            v = zeroed.bert.encoder.layer[layer].attention.self.value
            for h in hs:
                v.weight[h * 4:(h + 1) * 4] = 0
                v.bias[h * 4:(h + 1) * 4] = 0
    n_before = sum(p.numel() for p in model.parameters())
    prune_heads(model, heads)
    assert count_heads(model) == [2, 3]
    assert sum(p.numel() for p in model.parameters()) < n_before
    b = batches()[0]
    inputs = {k: v for k, v in b.items() if k != "labels"}
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, zeroed(**inputs).logits, atol=1e-5)


def test_prune_heads_errors():
    model = tiny_bert()
    with pytest.raises(ValueError, match="no head"):
        prune_heads(model, {0: [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="has 4 heads"):
        prune_heads(model, {0: [7]})
    with pytest.raises(ValueError, match="out of range"):
        prune_heads(model, {5: [0]})
