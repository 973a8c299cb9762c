"""Hidden-state and attention-map distillation losses (compresslib.distill.intermediate)."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from compresslib.distill import (
    attention_kl_loss,
    attention_maps_loss,
    attention_mse_loss,
    hidden_cosine_loss,
    hidden_mse_loss,
    hidden_states_loss,
    init_student_from_teacher,
    make_projections,
    uniform_layer_map,
)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def attention(b=2, h=3, s=5, seed=0):
    return torch.softmax(rand(b, h, s, s, seed=seed) * 2, dim=-1)


MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


# ------------------------------------------------------------------------------------- hidden states


def test_cosine_matches_closed_form_and_torch():
    hs, ht = rand(2, 5, 8, seed=1), rand(2, 5, 8, seed=2)
    expected = sum(
        1 - (hs[b, p] @ ht[b, p]) / (hs[b, p].norm() * ht[b, p].norm()) for b in range(2) for p in range(5)
    ) / 10
    assert torch.allclose(hidden_cosine_loss(hs, ht).double(), expected, atol=1e-6)
    torch_loss = F.cosine_embedding_loss(hs.reshape(-1, 8), ht.reshape(-1, 8), torch.ones(10))
    assert torch.allclose(hidden_cosine_loss(hs, ht).double(), torch_loss, atol=1e-6)


def test_cosine_ignores_length_and_is_zero_for_identical_directions():
    h = rand(2, 5, 8)
    assert hidden_cosine_loss(h, h).item() == pytest.approx(0.0, abs=1e-6)
    assert hidden_cosine_loss(3 * h, h).item() == pytest.approx(0.0, abs=1e-6)
    assert hidden_cosine_loss(-h, h).item() == pytest.approx(2.0, abs=1e-6)


def test_cosine_mask_averages_only_counted_positions():
    hs, ht = rand(2, 5, 8, seed=1), rand(2, 5, 8, seed=2)
    keep = MASK.bool()
    expected = hidden_cosine_loss(hs[keep], ht[keep])
    assert torch.allclose(hidden_cosine_loss(hs, ht, MASK), expected)
    changed = hs.clone()
    changed[1, 3:] = 100.0  # padding positions do not count
    assert torch.allclose(hidden_cosine_loss(changed, ht, MASK), expected)


def test_mse_closed_form_with_projection_and_autograd():
    torch.manual_seed(0)
    hs, ht = rand(2, 5, 6, seed=1).float(), rand(2, 5, 8, seed=2).float()
    projection = make_projections(6, 8)[0]
    loss = hidden_mse_loss(hs, ht, projection)
    expected = ((hs @ projection.weight.T + projection.bias - ht) ** 2).sum() / (10 * 8)
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    residual = (hs @ projection.weight.T + projection.bias - ht).detach()
    grad_w = 2 * torch.einsum("bpt,bps->ts", residual, hs) / (10 * 8)
    assert torch.allclose(projection.weight.grad, grad_w, atol=1e-6)


def test_mse_zero_for_identical_and_mask():
    h = rand(2, 5, 8)
    assert hidden_mse_loss(h, h).item() == 0.0
    hs, ht = rand(2, 5, 8, seed=1), rand(2, 5, 8, seed=2)
    keep = MASK.bool()
    assert torch.allclose(hidden_mse_loss(hs, ht, mask=MASK), ((hs[keep] - ht[keep]) ** 2).mean().float())


def test_no_gradient_reaches_the_teacher():
    hs = rand(2, 5, 8, seed=1).requires_grad_()
    ht = rand(2, 5, 8, seed=2).requires_grad_()
    (hidden_cosine_loss(hs, ht) + hidden_mse_loss(hs, ht)).backward()
    assert hs.grad is not None and ht.grad is None


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: hidden_cosine_loss(rand(2, 5, 6), rand(2, 5, 8)), "equal widths"),
        (lambda: hidden_mse_loss(rand(2, 5, 6), rand(2, 5, 8)), "projection"),
        (lambda: hidden_mse_loss(rand(2, 4, 8), rand(2, 5, 8)), "every dimension"),
        (lambda: hidden_cosine_loss(rand(2, 5, 8), rand(2, 5, 8), torch.zeros(2, 5)), "no position"),
        (lambda: hidden_cosine_loss(rand(2, 5, 8), rand(2, 5, 8), torch.ones(5, 2)), "mask must have shape"),
        (lambda: hidden_cosine_loss(rand(2, 5, 8), torch.full((2, 5, 8), float("nan"))), "NaN"),
        (lambda: make_projections(0, 8), "student_width"),
    ],
)
def test_hidden_argument_checks(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# ------------------------------------------------------------------------------------ attention maps


def test_attention_kl_matches_closed_form_and_kl_div():
    a_s, a_t = attention(seed=1), attention(seed=2)
    expected = (a_t * (a_t.log() - a_s.log())).sum(-1).mean()
    assert torch.allclose(attention_kl_loss(a_s, a_t).double(), expected, atol=1e-6)
    torch_kl = F.kl_div(a_s.log().reshape(-1, 5), a_t.reshape(-1, 5), reduction="batchmean")
    assert torch.allclose(attention_kl_loss(a_s, a_t).double(), torch_kl, atol=1e-6)


def test_attention_kl_gradient_matches_closed_form():
    """d/dA^S_ij of the KL is -A^T_ij / A^S_ij / (number of rows)."""
    a_t = attention(seed=2)
    a_s = attention(seed=1).requires_grad_()
    attention_kl_loss(a_s, a_t).backward()
    rows = 2 * 3 * 5
    assert torch.allclose(a_s.grad, (-a_t / a_s.detach() / rows).float().double(), atol=1e-6)


def test_attention_losses_zero_for_identical_maps_and_handle_zeros():
    a = attention()
    assert attention_kl_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert attention_mse_loss(a, a).item() == 0.0
    masked = a.clone()
    masked[..., 3:] = 0.0  # keys masked out: zero probability in both maps
    masked = masked / masked.sum(-1, keepdim=True)
    loss = attention_kl_loss(masked, masked)
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(0.0, abs=1e-6)


def test_attention_masks_count_only_real_queries_and_keys():
    a_s, a_t = attention(seed=1), attention(seed=2)
    keep = MASK.bool()
    rows = keep[:, None, :].expand(2, 3, 5)
    kl_rows = (a_t * (a_t.log() - a_s.log())).sum(-1)
    assert torch.allclose(attention_kl_loss(a_s, a_t, MASK).double(), kl_rows[rows].mean(), atol=1e-6)
    pairs = (keep[:, :, None] & keep[:, None, :])[:, None].expand(2, 3, 5, 5)
    expected = ((a_s - a_t) ** 2)[pairs].mean()
    assert torch.allclose(attention_mse_loss(a_s, a_t, MASK).double(), expected, atol=1e-7)
    assert not torch.allclose(attention_mse_loss(a_s, a_t).double(), expected)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: attention_kl_loss(attention(h=2), attention(h=3)), "same shape"),
        (lambda: attention_kl_loss(rand(2, 3, 5), rand(2, 3, 5)), "4 dimensions"),
        (lambda: attention_mse_loss(-attention(), attention()), "negative"),
        (lambda: attention_kl_loss(attention(), attention(), torch.ones(2, 4)), "mask must have shape"),
    ],
)
def test_attention_argument_checks(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# ---------------------------------------------------------------------------------------- layer maps


def test_uniform_layer_map():
    assert uniform_layer_map(6, 3) == {0: 0, 1: 2, 2: 4, 3: 6}
    assert uniform_layer_map(6, 3, hidden_states=False) == {0: 1, 1: 3, 2: 5}
    assert uniform_layer_map(12, 6)[6] == 12
    with pytest.raises(ValueError, match="multiple"):
        uniform_layer_map(6, 4)


def test_map_losses_average_the_pairs():
    student = tuple(rand(2, 5, 8, seed=i) for i in range(3))
    teacher = tuple(rand(2, 5, 8, seed=10 + i) for i in range(5))
    layer_map = {0: 0, 1: 2, 2: 4}
    expected = sum(hidden_cosine_loss(student[s], teacher[t]) for s, t in layer_map.items()) / 3
    assert torch.allclose(hidden_states_loss(student, teacher, layer_map), expected)
    assert torch.allclose(hidden_states_loss(student, teacher, [(0, 0), (1, 2), (2, 4)]), expected)
    att_s = tuple(attention(seed=i) for i in range(2))
    att_t = tuple(attention(seed=10 + i) for i in range(4))
    expected = (attention_mse_loss(att_s[0], att_t[1]) + attention_mse_loss(att_s[1], att_t[3])) / 2
    assert torch.allclose(attention_maps_loss(att_s, att_t, {0: 1, 1: 3}, loss="mse"), expected)


@pytest.mark.parametrize(
    "layer_map, words", [({}, "empty"), ({3: 0}, "student index 3"), ({0: 9}, "teacher index 9"), ("x", "dict")]
)
def test_bad_layer_maps(layer_map, words):
    student = tuple(rand(2, 5, 8, seed=i) for i in range(3))
    with pytest.raises(ValueError, match=words):
        hidden_states_loss(student, student, layer_map)


def test_mse_map_with_projections_across_widths():
    student = tuple(rand(2, 5, 6, seed=i).float() for i in range(3))
    teacher = tuple(rand(2, 5, 8, seed=10 + i).float() for i in range(5))
    projections = make_projections(6, 8, count=2)
    loss = hidden_states_loss(student, teacher, {1: 2, 2: 4}, loss="mse", projections=projections)
    loss.backward()
    assert all(p.grad is not None for p in projections.parameters())
    with pytest.raises(ValueError, match="one per pair"):
        hidden_states_loss(student, teacher, {1: 2, 2: 4}, loss="mse", projections=projections[:1])


def test_layer_copied_student_matches_teacher_where_the_map_says():
    """With a real model: a student copied with layers [0, 1] has exactly the teacher's first hidden states,
    so the map {1: 1, 2: 2} gives zero loss, while the uniform map to later teacher layers does not."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, attn_implementation="eager",
                        initializer_range=0.5)
    teacher = BertModel(config).eval()
    student = init_student_from_teacher(teacher, [0, 1])
    ids = torch.randint(1, 50, (2, 6))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    with torch.no_grad():
        t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        s = student(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    assert hidden_states_loss(s.hidden_states, t.hidden_states, {0: 0, 1: 1, 2: 2}, mask=mask).item() < 1e-6
    assert attention_maps_loss(s.attentions, t.attentions, {0: 0, 1: 1}, mask=mask).item() < 1e-6
    uniform = uniform_layer_map(4, 2)
    assert hidden_states_loss(s.hidden_states, t.hidden_states, uniform, mask=mask).item() > 1e-3
    assert attention_maps_loss(s.attentions, t.attentions, uniform_layer_map(4, 2, hidden_states=False)).item() > 1e-4
