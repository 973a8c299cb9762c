"""ALBERT-style sharing: one set of weights (counted once, updated once with the summed gradient), the
same function as a model built by hand, groups and initialisations, the factorised embedding, errors;
and the real MiniLM teacher shared, run forward/backward and fine-tuned."""

import copy

import pytest
import torch
from torch import nn

from compresslib.models import count_parameters
from compresslib.share import FactorizedEmbedding, factorize_embedding, factorize_word_embeddings, layer_groups, share_layers
from compresslib.training import fit, make_optimizer
from tiny_models import HIDDEN, VOCAB, tiny_bert, token_batch


def layer_size(model):
    return sum(p.numel() for p in model.bert.encoder.layer[0].parameters())


def test_all_layers_share_one_module_counted_once():
    teacher = tiny_bert(layers=4)
    shared = share_layers(teacher)
    layers = shared.bert.encoder.layer
    assert len(layers) == 4 and all(layer is layers[0] for layer in layers)
    assert layer_groups(shared) == [[0, 1, 2, 3]] and layer_groups(teacher) == [[0], [1], [2], [3]]
    assert count_parameters(shared) == count_parameters(teacher) - 3 * layer_size(teacher)
    assert len(list(shared.parameters())) == len(list(teacher.parameters())) - 3 * len(list(layers[0].parameters()))
    assert shared.config.num_hidden_layers == 4


def test_the_mean_layer_gives_the_outputs_of_a_model_built_by_hand():
    teacher = tiny_bert(layers=3)
    states = [layer.state_dict() for layer in teacher.bert.encoder.layer]
    mean = {name: sum(s[name] for s in states) / 3 for name in states[0]}
    by_hand = copy.deepcopy(teacher)
    layer = by_hand.bert.encoder.layer[0]
    layer.load_state_dict(mean)
    by_hand.bert.encoder.layer = nn.ModuleList([layer, layer, layer])
    shared = share_layers(teacher, init="mean")
    batch = token_batch()
    with torch.no_grad():
        hidden = shared.bert(**batch).last_hidden_state
        assert torch.allclose(hidden, by_hand.bert(**batch).last_hidden_state, atol=1e-6)
        assert not torch.allclose(hidden, teacher.bert(**batch).last_hidden_state, atol=1e-2)
        assert torch.allclose(shared(**batch).logits, by_hand(**batch).logits, atol=1e-6)


def test_a_chosen_layer_initialises_each_group_and_the_teacher_is_not_changed():
    teacher = tiny_bert(layers=6)
    before = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    shared = share_layers(teacher, groups=3, init=1)
    assert layer_groups(shared) == [[0, 1], [2, 3], [4, 5]]
    for group, source in zip(range(3), (1, 3, 5)):
        got = shared.bert.encoder.layer[2 * group].state_dict()
        want = teacher.bert.encoder.layer[source].state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert all(torch.equal(p, before[n]) for n, p in teacher.named_parameters())
    assert shared.bert.encoder.layer[0] is not teacher.bert.encoder.layer[1]
    assert layer_groups(share_layers(teacher, groups=[1, 2, 3], init=0)) == [[0], [1, 2], [3, 4, 5]]
    assert layer_groups(share_layers(teacher, groups=6)) == [[i] for i in range(6)]


def test_the_shared_gradient_is_the_sum_over_positions_and_one_step_updates_every_use():
    teacher = tiny_bert(layers=3)
    shared = share_layers(teacher, init=0)
    untied = copy.deepcopy(teacher)  # three separate copies of layer 0: same function, separate tensors
    untied.bert.encoder.layer = nn.ModuleList([copy.deepcopy(teacher.bert.encoder.layer[0]) for _ in range(3)])
    batch = {**token_batch(), "labels": torch.tensor([0, 1, 1])}
    for model in (shared, untied):
        model.train()
        torch.manual_seed(0)  # the same dropout masks
        model(**batch).loss.backward()
    name = "output.dense.weight"
    summed = sum(layer.get_parameter(name).grad for layer in untied.bert.encoder.layer)
    assert torch.allclose(shared.bert.encoder.layer[0].get_parameter(name).grad, summed, atol=1e-6)
    weight = shared.bert.encoder.layer[2].get_parameter(name)
    before = weight.detach().clone()
    optimizer = make_optimizer(shared, lr=1e-2)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == count_parameters(shared)
    optimizer.step()
    assert not torch.equal(weight, before)
    assert all(layer.get_parameter(name) is weight for layer in shared.bert.encoder.layer)


def test_factorised_embedding_is_the_best_rank_e_table():
    teacher = tiny_bert()
    table = teacher.bert.embeddings.word_embeddings
    factorized = factorize_embedding(table, 6)
    assert isinstance(factorized, FactorizedEmbedding)
    assert factorized.embed.weight.shape == (VOCAB, 6) and factorized.project.weight.shape == (HIDDEN, 6)
    assert factorized.project.bias is None and factorized.padding_idx == table.padding_idx
    product = factorized.embed.weight @ factorized.project.weight.T
    sigma = torch.linalg.svdvals(table.weight.detach().double())
    assert torch.allclose((table.weight - product).pow(2).sum().double(), sigma[6:].pow(2).sum(), rtol=1e-4)
    ids = torch.tensor([[0, 3, 49]])
    assert torch.allclose(factorized(ids), product[ids])
    assert sum(p.numel() for p in factorized.parameters()) == VOCAB * 6 + 6 * HIDDEN


def test_a_full_size_factorised_embedding_leaves_the_model_unchanged():
    teacher = tiny_bert()
    albert_like = factorize_word_embeddings(share_layers(teacher), HIDDEN)
    assert isinstance(albert_like.get_input_embeddings(), FactorizedEmbedding)
    assert isinstance(teacher.get_input_embeddings(), nn.Embedding)
    same = factorize_word_embeddings(teacher, HIDDEN)
    batch = token_batch()
    with torch.no_grad():
        assert torch.allclose(same(**batch).logits, teacher(**batch).logits, atol=1e-5)


@pytest.mark.parametrize("groups,words", [(4, "divide"), (0, "divide"), ([2, 2], "add up"), ([3, 0, 3], "positive"),
                                          ("all", "number of groups"), (True, "number of groups")])
def test_bad_groups_are_named(groups, words):
    with pytest.raises(ValueError, match=words):
        share_layers(tiny_bert(layers=6), groups=groups)


@pytest.mark.parametrize("init", ["first", -1, 2, 1.0])
def test_bad_init_is_named(init):
    with pytest.raises(ValueError, match="init must be 'mean' or the index"):
        share_layers(tiny_bert(layers=6), groups=3, init=init)


def test_other_bad_input_is_named():
    with pytest.raises(ValueError, match="BERT-family"):
        share_layers(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="nn.Embedding"):
        factorize_embedding(nn.Linear(3, 3), 2)
    with pytest.raises(ValueError, match="rank"):
        factorize_embedding(nn.Embedding(10, 4), 5)


@pytest.mark.slow
def test_the_shared_teacher_runs_forward_backward_and_fine_tunes():
    """All-MiniLM-L6-v2 with one shared layer: 5 layers' parameters fewer, and 8 steps fit 8 reviews."""
    from compresslib.models import load_classifier, load_tokenizer

    teacher = load_classifier()
    shared = share_layers(teacher)
    assert count_parameters(teacher) - count_parameters(shared) == 5 * layer_size(teacher)
    texts = ["a gripping, beautifully acted film", "dull and lifeless", "a joy from start to finish",
             "the plot goes nowhere", "warm, funny and wise", "tedious beyond words", "a triumph", "an utter mess"]
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])
    batch = {**load_tokenizer()(texts, return_tensors="pt", padding=True), "labels": labels}
    shared.eval()
    with torch.no_grad():
        loss_before = shared(**batch).loss.item()
    history = fit(shared, [batch], epochs=8, lr=5e-4, warmup_fraction=0.0, desc="test")
    shared.eval()
    with torch.no_grad():
        out = shared(**batch)
    assert out.loss.item() < loss_before / 2
    assert (out.logits.argmax(-1) == labels).all()
    assert len(history) == 8 and all(layer is shared.bert.encoder.layer[0] for layer in shared.bert.encoder.layer)
