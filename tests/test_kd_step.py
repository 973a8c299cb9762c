"""kd_step: the lecture's training step with its bug fixed."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from compresslib import combined_loss, kd_step


class Classifier(nn.Module):
    """A tiny model with dropout, called like a Hugging Face model: ``model(features=...)``."""

    def __init__(self, seed, dropout=0.5):
        super().__init__()
        torch.manual_seed(seed)
        self.hidden = nn.Linear(6, 16)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(16, 4)

    def forward(self, features):
        return self.out(self.dropout(torch.relu(self.hidden(features))))


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    batch = {"features": torch.randn(8, 6, generator=g), "labels": torch.randint(0, 4, (8,), generator=g)}
    return Classifier(1), Classifier(2, dropout=0.0), batch


def lecture_kd_step(teacher, student, temperature, inputs, optimizer):
    """The lecture's code, verbatim up to the model call: both forwards under no_grad."""
    kd_loss = nn.KLDivLoss(reduction="batchmean")
    teacher.eval()
    student.train()
    with torch.no_grad():
        logits_t = teacher(inputs)
        logits_s = student(inputs)
    loss = kd_loss(input=F.log_softmax(logits_s / temperature, dim=-1), target=F.softmax(logits_t / temperature, dim=-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_the_lecture_step_cannot_train_the_student(setup):
    teacher, student, batch = setup
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="does not require grad"):
        lecture_kd_step(teacher, student, 2.0, batch["features"], optimizer)


def test_kd_step_updates_the_student_by_the_combined_loss_gradient(setup):
    teacher, student, batch = setup
    expected = copy.deepcopy(student)
    teacher_before = copy.deepcopy(teacher.state_dict())

    # The same step by hand: teacher in eval mode (dropout off), SGD on L_C.
    teacher.eval()
    with torch.no_grad():
        target = teacher(batch["features"])
    loss = combined_loss(expected(batch["features"]), target, batch["labels"], 0.4, 3.0)
    loss.backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= 0.1 * p.grad

    teacher.train()  # kd_step must switch it to eval itself
    record = kd_step(teacher, student, batch, torch.optim.SGD(student.parameters(), lr=0.1), temperature=3.0, alpha=0.4)
    assert record["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert record["loss"] == pytest.approx(0.4 * record["hard"] + 0.6 * record["soft"], rel=1e-6)
    for p, q in zip(student.parameters(), expected.parameters()):
        torch.testing.assert_close(p, q)
    assert not teacher.training and student.training
    assert all(p.grad is None for p in teacher.parameters())
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, teacher_before[name])


def test_cached_teacher_logits_give_the_same_step(setup):
    teacher, student, batch = setup
    twin = copy.deepcopy(student)
    teacher.eval()
    with torch.no_grad():
        cached = dict(batch, teacher_logits=teacher(batch["features"]))
    a = kd_step(teacher, student, batch, torch.optim.SGD(student.parameters(), lr=0.1), temperature=2.0, alpha=0.5)
    b = kd_step(None, twin, cached, torch.optim.SGD(twin.parameters(), lr=0.1), temperature=2.0, alpha=0.5)
    assert a == pytest.approx(b)
    for p, q in zip(student.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q)


def test_repeated_steps_reduce_the_loss(setup):
    teacher, student, batch = setup
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    records = [kd_step(teacher, student, batch, optimizer, temperature=2.0, alpha=0.0) for _ in range(50)]
    # The soft loss is a cross-entropy: its floor is T^2 times the teacher's entropy (the KL part goes to 0).
    with torch.no_grad():
        q = torch.softmax(teacher(batch["features"]) / 2.0, -1)
    floor = 4.0 * -(q * q.log()).sum(-1).mean().item()
    assert records[-1]["soft"] - floor < 0.5 * (records[0]["soft"] - floor)
    hard = [kd_step(teacher, student, batch, optimizer, temperature=2.0, alpha=1.0)["hard"] for _ in range(50)]
    assert hard[-1] < 0.5 * hard[0]


def test_bad_arguments_fail_before_any_work(setup):
    teacher, student, batch = setup
    before = copy.deepcopy(student.state_dict())
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="temperature"):
        kd_step(teacher, student, batch, optimizer, temperature=0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        kd_step(teacher, student, batch, optimizer, temperature=2, alpha=2)
    with pytest.raises(ValueError, match="labels"):
        kd_step(teacher, student, {"features": batch["features"]}, optimizer, temperature=2, alpha=0.5)
    with pytest.raises(ValueError, match="teacher_logits"):
        kd_step(None, student, batch, optimizer, temperature=2, alpha=0.5)
    for name, value in student.state_dict().items():
        torch.testing.assert_close(value, before[name])
