"""Loaders of compresslib.training beyond one shuffled pass: streams cycled for a number of steps, batches
grouped by length, and predictions made in length order but returned in the dataset's order."""

import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

from compresslib.training import LengthGroupedBatches, StreamLoader, make_loader, predict_logits, predict_logits_by_length


class Tokenizer:
    pad_token_id = 0


def dataset(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = [torch.randint(1, 30, (n,), generator=g).tolist() for n in lengths]
    return Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * n for n in lengths],
                              "label": [i % 2 for i in range(len(lengths))]})


def test_a_stream_loader_gives_exactly_steps_batches_cycling_the_short_stream():
    short = [{"x": torch.tensor([i])} for i in range(3)]
    long = [{"x": torch.tensor([10 + i])} for i in range(7)]
    loader = StreamLoader({"": short, "transfer.": long}, steps=7)
    batches = list(loader)
    assert len(loader) == 7 and len(batches) == 7
    assert [b["x"].item() for b in batches] == [0, 1, 2, 0, 1, 2, 0]  # the labelled stream is cycled
    assert [b["transfer.x"].item() for b in batches] == list(range(10, 17))  # the transfer set read once


def test_a_shuffling_stream_is_reshuffled_on_each_pass():
    loader = make_loader(dataset([3] * 6), Tokenizer(), batch_size=6, shuffle=True, seed=0)
    passes = [b["input_ids"][:, 0].tolist() for b in StreamLoader({"": loader}, steps=4)]
    assert all(sorted(p) == sorted(passes[0]) for p in passes) and len({tuple(p) for p in passes}) > 1


@pytest.mark.parametrize("streams, steps, words", [({}, 3, "at least one"), ({"": [1]}, 0, "positive"),
                                                    ({"": []}, 2, "no batches")])
def test_bad_streams_or_steps_are_named(streams, steps, words):
    with pytest.raises(ValueError, match=words):
        StreamLoader(streams, steps=steps)


def test_length_grouped_batches_cover_every_example_once_per_pass_and_pad_less():
    lengths = [int(n) for n in torch.randint(3, 48, (400,), generator=torch.Generator().manual_seed(1))]
    sampler = LengthGroupedBatches(lengths, 16, torch.Generator().manual_seed(0), group_batches=5)
    first, second = list(sampler), list(sampler)
    for batches in (first, second):
        assert sorted(i for b in batches for i in b) == list(range(400)) and len(batches) == len(sampler) == 25
    assert first != second  # a fresh order each pass
    grouped = sum(max(lengths[i] for i in b) for b in first) / len(first)
    plain = torch.randperm(400, generator=torch.Generator().manual_seed(0)).split(16)
    random = sum(max(lengths[i] for i in b.tolist()) for b in plain) / len(plain)
    assert grouped < random - 8  # far less padding than random batches


def test_a_grouped_loader_batches_similar_lengths_and_refuses_a_fixed_order():
    data = dataset([3, 40, 4, 41, 5, 42, 3, 40] * 4)
    loader = make_loader(data, Tokenizer(), batch_size=4, shuffle=True, group_by_length=True)
    widths = [b["input_ids"].shape[1] for b in loader]
    assert max(sorted(widths)[:4]) <= 5 and min(sorted(widths)[4:]) >= 40  # the 16 short snippets batched together
    with pytest.raises(ValueError, match="shuffled order"):
        make_loader(data, Tokenizer(), batch_size=4, shuffle=False, group_by_length=True)


def test_predictions_by_length_come_back_in_the_datasets_order():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32,
                                                     max_position_embeddings=64, num_labels=2)).eval()
    data = dataset([9, 2, 30, 5, 17, 2, 11])
    one_by_one = torch.cat([predict_logits(model, make_loader(data.select([i]), Tokenizer(), batch_size=1, shuffle=False))
                            for i in range(len(data))])
    by_length = predict_logits_by_length(model, data, Tokenizer(), batch_size=3)
    torch.testing.assert_close(by_length, one_by_one, atol=1e-5, rtol=1e-4)
