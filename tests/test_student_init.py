"""Students initialised from a teacher by layer skipping (compresslib.distill.student).

Tiny random BERT-family models (width 32, 4 layers) keep the whole file to a few seconds on CPU.
"""

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from compresslib.distill import init_student_from_teacher, num_layers_of, select_layers

VOCAB, WIDTH, LAYERS = 100, 32, 4


def tiny_bert(seed=0, layers=LAYERS):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=32, num_labels=3,
    )
    return BertForSequenceClassification(config).eval()


def tiny_distilbert(seed=0):
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=VOCAB, dim=WIDTH, n_layers=LAYERS, n_heads=4, hidden_dim=64,
                              max_position_embeddings=32, num_labels=3)
    return DistilBertForSequenceClassification(config).eval()


def tiny_roberta(seed=0):
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40, num_labels=3)
    return RobertaForSequenceClassification(config).eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (3, 9), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.fixture
def teacher():
    return tiny_bert()


# ---------------------------------------------------------------------------------------------- layers


def test_every_other_picks_even_layers():
    assert select_layers(6, "every_other") == [0, 2, 4]
    assert select_layers(12, "every_other") == [0, 2, 4, 6, 8, 10]
    assert select_layers(5, "every_other") == [0, 2, 4]
    assert select_layers(1, "every_other") == [0]


def test_first_k_and_explicit_list_and_random():
    assert select_layers(6, ("first", 3)) == [0, 1, 2]
    assert select_layers(12, [0, 2, 4, 7, 9, 11]) == [0, 2, 4, 7, 9, 11]
    assert select_layers(6, "random") is None
    assert select_layers(6, ("random", 2)) is None


@pytest.mark.parametrize(
    "layers, words",
    [
        ([], "empty"),
        ([0, 4], "outside"),
        ([-1, 2], "outside"),
        ([0, 2, 2], "repeats"),
        ([2, 0], "not increasing"),
        ("every_second", "every_other"),
        (("first", 0), "k in layers"),
        (("first", 5), "k in layers"),
        ([0.0, 2.0], "integer"),
        (3, "list of layer indices"),
    ],
)
def test_bad_layer_lists_raise_clear_errors(teacher, layers, words):
    with pytest.raises(ValueError, match=words):
        init_student_from_teacher(teacher, layers)


def test_not_a_bert_family_model_raises():
    with pytest.raises(ValueError, match="transformers model"):
        init_student_from_teacher(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    gpt_like = torch.nn.Module()
    gpt_like.config = BertConfig()
    gpt_like.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="BERT-family"):
        init_student_from_teacher(gpt_like)


# ----------------------------------------------------------------------------------- what gets copied


@pytest.mark.parametrize("make", [tiny_bert, tiny_distilbert, tiny_roberta])
def test_identity_map_reproduces_the_teacher_exactly(make):
    teacher = make()
    student = init_student_from_teacher(teacher, list(range(LAYERS)))
    assert type(student) is type(teacher)
    inputs = batch()
    with torch.no_grad():
        expected = teacher(**inputs).logits
        got = student(**inputs).logits
    assert torch.equal(got, expected)


def test_every_other_student_has_the_teachers_layers(teacher):
    student = init_student_from_teacher(teacher, "every_other")
    assert num_layers_of(student) == 2
    assert student.config.num_hidden_layers == 2
    assert student.config.student_of_teacher_layers == [0, 2]
    t_layers, s_layers = teacher.bert.encoder.layer, student.bert.encoder.layer
    for s, t in enumerate([0, 2]):
        for (name, p_s), (_, p_t) in zip(s_layers[s].named_parameters(), t_layers[t].named_parameters()):
            assert torch.equal(p_s, p_t), name
    # layer 1 of the student is teacher layer 2, not teacher layer 1
    assert not torch.equal(s_layers[1].attention.self.query.weight, t_layers[1].attention.self.query.weight)
    for module in ("embeddings", "pooler"):
        for (name, p_s), (_, p_t) in zip(
            getattr(student.bert, module).named_parameters(), getattr(teacher.bert, module).named_parameters()
        ):
            assert torch.equal(p_s, p_t), f"{module}.{name}"
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)


def test_student_equals_running_the_chosen_teacher_layers(teacher):
    """The student's hidden state after its layer 1 is what teacher layers 0 then 2 compute."""
    student = init_student_from_teacher(teacher, [0, 2])
    inputs = batch()
    with torch.no_grad():
        s_out = student(**inputs, output_hidden_states=True).hidden_states
        x = teacher.bert.embeddings(input_ids=inputs["input_ids"])
        mask = (1.0 - inputs["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
        for t in (0, 2):
            x = teacher.bert.encoder.layer[t](x, attention_mask=mask)
            x = x[0] if isinstance(x, tuple) else x
    keep = inputs["attention_mask"].bool()
    assert torch.allclose(s_out[2][keep], x[keep], atol=1e-5)


def test_tensors_are_copies_not_shared(teacher):
    student = init_student_from_teacher(teacher, "every_other")
    teacher_ptrs = {p.data_ptr() for p in teacher.parameters()}
    assert all(p.data_ptr() not in teacher_ptrs for p in student.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())


def test_training_the_student_leaves_the_teacher_unchanged(teacher):
    student = init_student_from_teacher(teacher, "every_other").train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    loss = student(**batch(), labels=torch.tensor([0, 1, 2])).loss
    loss.backward()
    optimizer.step()
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())


def test_copy_head_false_leaves_a_fresh_head(teacher):
    student = init_student_from_teacher(teacher, "every_other", copy_head=False, seed=3)
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert not torch.equal(student.bert.pooler.dense.weight, teacher.bert.pooler.dense.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)


def test_random_student_copies_nothing_and_is_seeded(teacher):
    student = init_student_from_teacher(teacher, "random", seed=5)
    assert num_layers_of(student) == 2 and student.config.student_of_teacher_layers is None
    assert not torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    again = init_student_from_teacher(teacher, ("random", 2), seed=5)
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), again.state_dict().values()))
    assert num_layers_of(init_student_from_teacher(teacher, ("random", 3))) == 3


def test_student_keeps_the_teachers_mode(teacher):
    assert not init_student_from_teacher(teacher).training
    assert init_student_from_teacher(teacher.train()).training


@pytest.mark.parametrize("make", [tiny_distilbert, tiny_roberta])
def test_other_families_every_other(make):
    teacher = make()
    student = init_student_from_teacher(teacher, "every_other")
    assert num_layers_of(student) == 2
    with torch.no_grad():
        assert student(**batch()).logits.shape == (3, 3)


def test_save_pretrained_round_trip(teacher, tmp_path):
    student = init_student_from_teacher(teacher, [1, 3])
    student.save_pretrained(tmp_path)
    loaded = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.num_hidden_layers == 2
    assert loaded.config.student_of_teacher_layers == [1, 3]
    inputs = batch()
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, student(**inputs).logits)
