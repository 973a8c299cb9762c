"""The library's training steps on cached teacher outputs (what the distillation run trains its students with)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from compresslib.batches import EXAMPLE_INDEX_KEY, LABELS_KEY, TEACHER_LOGITS_KEY, TRANSFER_PREFIX
from compresslib.distill import cached_kd_hidden_step, cached_kd_step, cached_transfer_kd_step, combined_loss_parts, kd_step


def tiny_bert(layers, seed):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


@pytest.fixture
def setup():
    """A 2-layer student, a cache of 2 teacher layers for 6 examples (padded to 7 positions), and a batch
    of examples 4, 1, 3 of length 5 whose third example has 2 padding positions."""
    g = torch.Generator().manual_seed(0)
    cache = torch.randn(2, 6, 7, 16, generator=g).to(torch.float16)
    mask = torch.ones(3, 5, dtype=torch.long)
    mask[2, 3:] = 0
    batch = {"input_ids": torch.randint(1, 40, (3, 5), generator=g), "attention_mask": mask,
             LABELS_KEY: torch.tensor([0, 1, 1]), TEACHER_LOGITS_KEY: torch.randn(3, 2, generator=g),
             EXAMPLE_INDEX_KEY: torch.tensor([4.0, 1.0, 3.0])}
    return tiny_bert(2, 1), cache, batch


def by_hand(student, cache, batch, *, temperature, alpha, weight):
    """L_C + w * mean over the pairs (1 -> cache 0, 2 -> cache 1) of the masked cosine loss, written out."""
    output = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    rows = batch[EXAMPLE_INDEX_KEY].long()
    counted = batch["attention_mask"].bool()
    terms = []
    for s, k in ((1, 0), (2, 1)):
        teacher = cache[k, rows, :5].float()
        cosine = F.cosine_similarity(output.hidden_states[s], teacher, dim=-1)
        terms.append((1 - cosine)[counted].mean())
    hidden = sum(terms) / 2
    parts = combined_loss_parts(output.logits, batch[TEACHER_LOGITS_KEY], batch[LABELS_KEY], alpha, temperature)
    return parts.total + weight * hidden, hidden


def test_hidden_step_takes_one_sgd_step_on_the_combined_plus_hidden_loss(setup):
    student, cache, batch = setup
    expected = copy.deepcopy(student)
    expected.train()
    total, hidden = by_hand(expected, cache, batch, temperature=2.0, alpha=0.3, weight=0.7)
    total.backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= 0.1 * p.grad

    step = cached_kd_hidden_step(cache, {1: 0, 2: 1}, temperature=2.0, alpha=0.3, weight=0.7, loss="cosine")
    record = step(student, batch, torch.optim.SGD(student.parameters(), lr=0.1))
    assert record["hidden"] == pytest.approx(hidden.item(), rel=1e-5)
    assert record["loss"] == pytest.approx(total.item(), rel=1e-5)
    for (name, got), want in zip(student.named_parameters(), expected.parameters()):
        torch.testing.assert_close(got, want, msg=name)


def test_without_the_hidden_term_it_is_the_cached_kd_step(setup):
    student, cache, batch = setup
    other = copy.deepcopy(student)
    hidden_step = cached_kd_hidden_step(cache, {1: 0, 2: 1}, temperature=3.0, alpha=0.5, weight=0.0)
    hidden_step(student, batch, torch.optim.SGD(student.parameters(), lr=0.1))
    plain = {k: v for k, v in batch.items() if k != EXAMPLE_INDEX_KEY}
    record = cached_kd_step(temperature=3.0, alpha=0.5)(other, plain, torch.optim.SGD(other.parameters(), lr=0.1))
    assert set(record) == {"loss", "hard", "soft"}
    for got, want in zip(student.parameters(), other.parameters()):
        torch.testing.assert_close(got, want)


def test_cached_kd_step_is_kd_step_without_a_teacher(setup):
    student, _, batch = setup
    plain = {k: v for k, v in batch.items() if k != EXAMPLE_INDEX_KEY}
    other = copy.deepcopy(student)
    a = cached_kd_step(temperature=2.0, alpha=0.25)(student, plain, torch.optim.SGD(student.parameters(), lr=0.1))
    b = kd_step(None, other, plain, torch.optim.SGD(other.parameters(), lr=0.1), temperature=2.0, alpha=0.25)
    assert a == b


@pytest.mark.parametrize("kwargs, words", [
    (dict(weight=-1.0), "weight must be a non-negative"),
    (dict(loss="kl"), "loss must be one of"),
    (dict(temperature=0.0), "T > 0"),
    (dict(alpha=1.5), "alpha"),
])
def test_bad_settings_are_refused_before_any_step(setup, kwargs, words):
    _, cache, _ = setup
    settings = dict(temperature=2.0, alpha=0.5, weight=1.0, loss="cosine") | kwargs
    with pytest.raises(ValueError, match=words):
        cached_kd_hidden_step(cache, {1: 0, 2: 1}, **settings)


def test_a_map_beyond_the_cache_or_a_batch_without_indices_is_refused(setup):
    student, cache, batch = setup
    with pytest.raises(ValueError, match="the cache holds 2"):
        cached_kd_hidden_step(cache, {1: 0, 2: 2}, temperature=2.0, alpha=0.5, weight=1.0)
    step = cached_kd_hidden_step(cache, {1: 0, 2: 1}, temperature=2.0, alpha=0.5, weight=1.0)
    without = {k: v for k, v in batch.items() if k != EXAMPLE_INDEX_KEY}
    with pytest.raises(ValueError, match="example_index"):
        step(student, without, torch.optim.SGD(student.parameters(), lr=0.1))


# ------------------------------------------------------------------------- the transfer-set step


@pytest.fixture
def streams():
    """A labelled batch of 3 and a transfer batch of 4 (longer snippets, labels -1: unknown)."""
    g = torch.Generator().manual_seed(2)
    labelled = {"input_ids": torch.randint(1, 40, (3, 5), generator=g), "attention_mask": torch.ones(3, 5, dtype=torch.long),
                LABELS_KEY: torch.tensor([0, 1, 1])}
    transfer = {"input_ids": torch.randint(1, 40, (4, 6), generator=g), "attention_mask": torch.ones(4, 6, dtype=torch.long),
                LABELS_KEY: torch.full((4,), -1), TEACHER_LOGITS_KEY: torch.randn(4, 2, generator=g)}
    return tiny_bert(2, 1), labelled, transfer


def merge(labelled, transfer):
    return {**labelled, **{TRANSFER_PREFIX + k: v for k, v in transfer.items()}}


def test_transfer_step_is_hard_loss_on_labels_plus_soft_loss_on_the_transfer_set(streams):
    student, labelled, transfer = streams
    expected = copy.deepcopy(student).train()
    hard = F.cross_entropy(expected(input_ids=labelled["input_ids"], attention_mask=labelled["attention_mask"]).logits,
                           labelled[LABELS_KEY])
    z = expected(input_ids=transfer["input_ids"], attention_mask=transfer["attention_mask"]).logits
    q = torch.softmax(transfer[TEACHER_LOGITS_KEY] / 3.0, -1)
    soft = 9.0 * -(q * torch.log_softmax(z / 3.0, -1)).sum(-1).mean()  # T^2 x cross-entropy, written out
    (0.25 * hard + 0.75 * soft).backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= 0.1 * p.grad

    step = cached_transfer_kd_step(temperature=3.0, alpha=0.25)
    record = step(student, merge(labelled, transfer), torch.optim.SGD(student.parameters(), lr=0.1))
    assert record["hard"] == pytest.approx(hard.item(), rel=1e-5) and record["soft"] == pytest.approx(soft.item(), rel=1e-5)
    assert record["loss"] == pytest.approx((0.25 * hard + 0.75 * soft).item(), rel=1e-5)
    for (name, got), want in zip(student.named_parameters(), expected.parameters()):
        torch.testing.assert_close(got, want, msg=name)


def test_with_one_batch_for_both_targets_it_is_the_cached_kd_step(streams):
    student, labelled, transfer = streams
    other = copy.deepcopy(student)
    both = {**transfer, LABELS_KEY: torch.tensor([1, 0, 0, 1])}
    a = cached_transfer_kd_step(temperature=2.0, alpha=0.5)(student, merge(both, both), torch.optim.SGD(student.parameters(), lr=0.1))
    b = cached_kd_step(temperature=2.0, alpha=0.5)(other, both, torch.optim.SGD(other.parameters(), lr=0.1))
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    for got, want in zip(student.parameters(), other.parameters()):
        torch.testing.assert_close(got, want)


def test_pure_soft_needs_no_labels_and_hard_only_needs_no_transfer_set(streams):
    student, labelled, transfer = streams
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    soft_only = {TRANSFER_PREFIX + k: v for k, v in transfer.items()}  # its labels are -1: never read
    assert set(cached_transfer_kd_step(temperature=2.0, alpha=0.0)(student, soft_only, optimizer)) == {"loss", "soft"}
    assert set(cached_transfer_kd_step(temperature=2.0, alpha=1.0)(student, labelled, optimizer)) == {"loss", "hard"}
    with pytest.raises(ValueError, match="labelled stream"):
        cached_transfer_kd_step(temperature=2.0, alpha=0.5)(student, soft_only, optimizer)
    with pytest.raises(ValueError, match="transfer stream"):
        cached_transfer_kd_step(temperature=2.0, alpha=0.5)(student, labelled, optimizer)
    with pytest.raises(ValueError, match="T > 0"):
        cached_transfer_kd_step(temperature=-1.0, alpha=0.5)
