"""The tickets run's cached top-layers model: the same logits and gradients as the full BERT classifier whose
bottom layers produced the cache (the last layer computing [CLS] only), padded batches that replay their order,
and the packed predictions the run stores."""

import copy

import numpy as np
import pytest
import torch

from compresslib.runs.common import decode_binary, encode_binary
from compresslib.top_layers import CachedSplit, TopLayersClassifier, assemble
from tiny_models import VOCAB, tiny_bert


def padded_batch(seed=3):
    """Three snippets of lengths 7, 4 and 2 (padding after them)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(3, 7, dtype=torch.long)
    for row, length in enumerate((7, 4, 2)):
        mask[row, :length] = 1
    return torch.randint(1, VOCAB, (3, 7), generator=g), mask


def bottom_output(model, ids, mask, layer):
    return model.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]


@pytest.mark.parametrize("top", [1, 2])
@pytest.mark.parametrize("cls_only", [True, False])
def test_top_model_gives_the_full_models_logits_and_gradients(top, cls_only):
    model = tiny_bert(layers=3, seed=0).eval()
    ids, mask = padded_batch()
    cached = bottom_output(model, ids, mask, 3 - top).detach()
    head = TopLayersClassifier(model, top, cls_only=cls_only).eval()
    expected = model(input_ids=ids, attention_mask=mask).logits
    got = head(cached, mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    # gradients of every trainable tensor agree with the full model's (same names)
    labels = torch.tensor([0, 1, 1])
    torch.nn.functional.cross_entropy(expected, labels).backward()
    torch.nn.functional.cross_entropy(got, labels).backward()
    full = dict(model.named_parameters())
    for name, param in head.named_parameters():
        torch.testing.assert_close(param.grad, full[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_padding_never_changes_a_snippets_logits():
    model = tiny_bert(layers=2, seed=1).eval()
    ids, mask = padded_batch()
    head = TopLayersClassifier(model, 1).eval()
    cached = bottom_output(model, ids, mask, 1).detach()
    alone = head(cached[2:, :2], mask[2:, :2])  # the length-2 snippet without its padding
    torch.testing.assert_close(head(cached, mask)[2:], alone, atol=1e-5, rtol=1e-4)


def test_assemble_loads_the_trained_top_into_the_full_model():
    model = tiny_bert(layers=2, seed=0)
    head = TopLayersClassifier(model, 1)
    with torch.no_grad():
        head.classifier.weight.add_(1.0)
        head.bert.encoder.layer["1"].output.dense.weight.mul_(0)
    full = assemble(head, copy.deepcopy(model))
    assert torch.equal(full.classifier.weight, head.classifier.weight)
    assert torch.count_nonzero(full.bert.encoder.layer[1].output.dense.weight) == 0
    assert torch.equal(full.bert.encoder.layer[0].output.dense.weight, model.bert.encoder.layer[0].output.dense.weight)
    with pytest.raises(ValueError, match="lacks"):
        assemble(TopLayersClassifier(tiny_bert(layers=3), 1), tiny_bert(layers=2))


def test_bad_top_layers_is_named():
    with pytest.raises(ValueError, match="top_layers"):
        TopLayersClassifier(tiny_bert(layers=2), 3)
    with pytest.raises(ValueError, match="inputs_embeds"):
        TopLayersClassifier(tiny_bert(layers=2), 1)(torch.zeros(2, 5, 16), torch.ones(2, 4))


def split_of(lengths):
    g = torch.Generator().manual_seed(0)
    return CachedSplit([torch.randn(n, 4, generator=g) for n in lengths], torch.arange(len(lengths)) % 2)


def test_shuffled_batches_replay_their_order_and_pad_to_the_longest():
    split = split_of([3, 1, 4, 1, 5, 2, 6])
    def two_passes(batches):
        return [[b["labels"].tolist() for b in batches] for _ in range(2)]

    first, replay = two_passes(split.batches(3, shuffle=True, seed=5)), two_passes(split.batches(3, shuffle=True, seed=5))
    assert first == replay  # two objects with one seed: the same batches, pass after pass
    assert first[0] != first[1]  # each pass is a fresh permutation
    batch = next(iter(split.batches(7, shuffle=False)))
    assert batch["inputs_embeds"].shape == (7, 6, 4)
    assert batch["attention_mask"].sum(1).tolist() == sorted([3, 1, 4, 1, 5, 2, 6])
    ordered = split.batches(2, shuffle=False)
    assert sorted(ordered.order.tolist()) == list(range(7)) and len(ordered) == 4
    with pytest.raises(ValueError, match="batch_size"):
        split.batches(0, shuffle=False)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 2551])
def test_packed_binary_predictions_round_trip(n):
    classes = np.random.default_rng(n).integers(0, 2, n)
    text = encode_binary(classes)
    assert len(text) == 2 * -(-n // 8)
    assert np.array_equal(decode_binary(text, n), classes)


def test_packed_predictions_refuse_other_classes_and_wrong_counts():
    assert encode_binary([1, 0, 1]) == "a0"
    with pytest.raises(ValueError, match="0 and 1"):
        encode_binary([0, 2])
    with pytest.raises(ValueError, match="bits"):
        decode_binary("a0", 9)
    with pytest.raises(ValueError, match="bits"):
        decode_binary("a0ff", 3)


def test_the_notebooks_sweep_plot_draws_the_majority_class():
    from compresslib.top_layers import TopLayersTask, plot_sparsity_sweep

    task = TopLayersTask(None, [], [{"labels": torch.tensor([0, 1, 1])}, {"labels": torch.tensor([1])}], 1, 1e-3)
    assert task.majority_accuracy() == pytest.approx(0.75)
    fig = plot_sparsity_sweep({"IMP": ([0.0, 0.5], [0.8, 0.7])}, full_accuracy=0.8, majority=task.majority_accuracy())
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
    assert list(lines["majority class (a constant guess)"]) == [75.0, 75.0]
