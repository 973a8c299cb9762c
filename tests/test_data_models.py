"""The embedded default data and teacher, and the hub path exercised through local folders."""

import collections

import pytest
import torch

from compresslib import data, models


@pytest.fixture(scope="module")
def polarity():
    return data.load_text_classification()


def test_polarity_splits_are_disjoint_stratified_and_clean(polarity):
    texts = {split: list(ds["text"]) for split, ds in polarity.items()}
    assert {split: len(t) for split, t in texts.items()} == {"train": 9181, "validation": 1020, "test": 2551}
    all_texts = [t for split in texts.values() for t in split]
    assert len(all_texts) == len(set(all_texts)), "duplicate texts across or within splits"
    assert all(t.strip() for t in all_texts)
    fractions = {}
    for split, ds in polarity.items():
        counts = collections.Counter(ds["label"])
        fractions[split] = counts[1] / len(ds)
    assert max(fractions.values()) - min(fractions.values()) < 0.01
    assert polarity["train"].features["label"].names == ["rotten", "fresh"]


def test_polarity_split_is_fixed(polarity):
    again = data.load_text_classification()
    assert polarity["test"]["text"][:20] == again["test"]["text"][:20]


def test_unknown_dataset_name_is_named():
    with pytest.raises(ValueError, match="unknown data set 'sst3'"):
        data.load_text_classification("sst3")


def test_local_folder_takes_the_hub_path(tmp_path):
    """The same code that reads hub data sets reads a folder of data files (here CSV, 'sentence' column)."""
    (tmp_path / "train.csv").write_text("sentence,label\nfine film,1\ndull film,0\n")
    (tmp_path / "validation.csv").write_text("sentence,label\ngood,1\n")
    loaded = data.load_text_classification(str(tmp_path))
    assert set(loaded) == {"train", "validation", "test"}
    assert loaded["train"]["text"] == ["fine film", "dull film"]
    assert loaded["test"]["text"] == ["good"]


def test_saved_dataset_dict_folder_round_trips(tmp_path, polarity):
    small = polarity.map(lambda r: r).filter(lambda r, i: i < 5, with_indices=True)
    small.save_to_disk(str(tmp_path / "saved"))
    loaded = data.load_text_classification(str(tmp_path / "saved"))
    assert loaded["train"]["text"] == small["train"]["text"]


def test_default_teacher_is_the_minilm_bert():
    model = models.load_classifier(seed=3)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert models.count_parameters(model) == 22_713_986
    twin = models.load_classifier(seed=3)
    torch.testing.assert_close(model.classifier.weight, twin.classifier.weight)
    tokenizer = models.load_tokenizer()
    assert tokenizer("a beautiful day")["input_ids"] == [101, 1037, 3376, 2154, 102]


def test_pretrained_encoder_weights_are_loaded_not_random():
    a, b = models.load_classifier(seed=0), models.load_classifier(seed=1)
    torch.testing.assert_close(a.bert.encoder.layer[0].attention.self.query.weight,
                               b.bert.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)


def test_hub_style_name_loads_from_a_local_folder(tmp_path):
    """Any name from_pretrained accepts works: a folder written by save_pretrained stands in for a hub model."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, num_labels=3)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    model = models.load_classifier(str(tmp_path), num_labels=3)
    assert model.config.num_hidden_layers == 2 and model.num_labels == 3


def test_bad_num_labels_is_named():
    with pytest.raises(ValueError, match="num_labels"):
        models.load_classifier(num_labels=0)


def test_subset_is_a_seeded_shuffle_whose_smaller_sizes_are_prefixes(polarity):
    train = polarity["train"]
    small, large = data.subset(train, 50, seed=3), data.subset(train, 200, seed=3)
    assert small["text"] == large["text"][:50]
    assert small["text"] != data.subset(train, 50, seed=4)["text"]
    assert small["text"] != train["text"][:50]
    assert len(data.subset(train, None, seed=3)) == len(train) == len(data.subset(train, 10**6, seed=3))
    with pytest.raises(ValueError, match="positive integer or None"):
        data.subset(train, 0)


def test_freeze_word_embeddings_freezes_only_the_word_embeddings_and_undoes():
    model = models.load_classifier(seed=0)
    models.freeze_word_embeddings(model)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["bert.embeddings.word_embeddings.weight"]
    models.freeze_word_embeddings(model, frozen=False)
    assert all(p.requires_grad for p in model.parameters())
