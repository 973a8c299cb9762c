"""The distillation losses against the lecture's closed forms, autograd and finite differences."""

import math

import pytest
import torch
import torch.nn.functional as F

from compresslib import combined_loss, distillation_loss, softmax_with_temperature
from compresslib.distill import combined_loss_parts


@pytest.fixture(autouse=True)
def float64_by_default():
    """Closed-form comparisons in double precision; restored afterwards for the other test modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(5, 7, generator=g) * 3
    teacher = torch.randn(5, 7, generator=g) * 3
    return student, teacher


# --- softened softmax -------------------------------------------------------------------------


def test_softmax_with_temperature_matches_the_formula(logits):
    z, _ = logits
    for T in (0.5, 1.0, 4.0):
        expected = torch.exp(z / T) / torch.exp(z / T).sum(-1, keepdim=True)
        torch.testing.assert_close(softmax_with_temperature(z, T), expected)


def test_temperature_one_is_the_ordinary_softmax(logits):
    z, _ = logits
    torch.testing.assert_close(softmax_with_temperature(z, 1.0), torch.softmax(z, -1))


def test_higher_temperature_softens_towards_uniform(logits):
    z, _ = logits
    entropies = [-(p * p.log()).sum(-1) for p in (softmax_with_temperature(z, T) for T in (0.5, 1, 2, 8, 1000))]
    for low, high in zip(entropies, entropies[1:]):
        assert (high > low).all()
    torch.testing.assert_close(entropies[-1], torch.full((5,), math.log(7)), atol=1e-4, rtol=0)


def test_softmax_dim_argument():
    z = torch.randn(3, 4)
    torch.testing.assert_close(softmax_with_temperature(z, 2.0, dim=0), torch.softmax(z / 2, dim=0))


# --- distillation loss ------------------------------------------------------------------------


def cross_entropy_by_hand(z, v, T):
    p = torch.exp(z / T) / torch.exp(z / T).sum(-1, keepdim=True)
    q = torch.exp(v / T) / torch.exp(v / T).sum(-1, keepdim=True)
    return -(q * torch.log(p)).sum(-1).mean()


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 4.0, 10.0])
def test_distillation_loss_is_t2_times_the_cross_entropy(logits, T):
    z, v = logits
    expected = cross_entropy_by_hand(z, v, T)
    torch.testing.assert_close(distillation_loss(z, v, T, scale_by_t2=False), expected)
    torch.testing.assert_close(distillation_loss(z, v, T), T**2 * expected)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_gradient_is_one_over_t_times_p_minus_q(logits, T):
    """The lecture: dL_D/dz_k = (1/T)(p_k - q_k) per example (p student, q teacher), times T^2."""
    z, v = logits
    z = z.clone().requires_grad_()
    distillation_loss(z, v, T, scale_by_t2=False).backward()
    p, q = torch.softmax(z.detach() / T, -1), torch.softmax(v / T, -1)
    n = z.shape[0]
    torch.testing.assert_close(z.grad, (p - q) / (T * n))

    z.grad = None
    distillation_loss(z, v, T).backward()
    torch.testing.assert_close(z.grad, T * (p - q) / n)


def test_gradient_matches_finite_differences(logits):
    z, v = logits
    z = z[:2].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: distillation_loss(x, v[:2], 3.0), (z,))


def test_gradient_size_stays_constant_with_t2_and_shrinks_as_one_over_t2_without():
    """High-temperature limit: (p - q) ~ (z - v)/(K T) for zero-mean logits, so the unscaled gradient
    falls as 1/T^2 and the T^2-scaled gradient approaches (z - v)/K, independent of T."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 10, generator=g)
    v = torch.randn(4, 10, generator=g)
    z, v = z - z.mean(-1, keepdim=True), v - v.mean(-1, keepdim=True)

    def grad_norm(T, scale):
        x = z.clone().requires_grad_()
        distillation_loss(x, v, T, scale_by_t2=scale).backward()
        return x.grad.norm().item()

    scaled = [grad_norm(T, True) for T in (5, 10, 20, 40)]
    unscaled = [grad_norm(T, False) for T in (5, 10, 20, 40)]
    limit = ((z - v) / (10 * 4)).norm().item()
    for value in scaled:
        assert value == pytest.approx(limit, rel=0.05)
    for T, value in zip((5, 10, 20, 40), unscaled):
        assert value * T**2 == pytest.approx(limit, rel=0.05)


def test_cross_entropy_and_kl_differ_by_teacher_entropy_and_have_equal_gradients(logits):
    z, v = logits
    T = 2.5
    q = torch.softmax(v / T, -1)
    teacher_entropy = -(q * q.log()).sum(-1).mean()
    z1 = z.clone().requires_grad_()
    z2 = z.clone().requires_grad_()
    ce = distillation_loss(z1, v, T, scale_by_t2=False)
    kl = F.kl_div(F.log_softmax(z2 / T, -1), q, reduction="batchmean")
    torch.testing.assert_close(ce - kl, teacher_entropy)
    ce.backward()
    kl.backward()
    torch.testing.assert_close(z1.grad, z2.grad)


def test_no_gradient_reaches_the_teacher(logits):
    z, v = logits
    v = v.clone().requires_grad_()
    z = z.clone().requires_grad_()
    distillation_loss(z, v, 2.0).backward()
    assert v.grad is None


def test_loss_is_a_batch_mean_not_a_sum(logits):
    z, v = logits
    doubled = distillation_loss(torch.cat([z, z]), torch.cat([v, v]), 2.0)
    torch.testing.assert_close(doubled, distillation_loss(z, v, 2.0))


def test_token_level_mask_averages_over_unmasked_positions():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 5, 11, generator=g)
    v = torch.randn(2, 5, 11, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    T = 2.0
    keep = mask.bool()
    expected = T**2 * cross_entropy_by_hand(z[keep], v[keep], T)
    torch.testing.assert_close(distillation_loss(z, v, T, mask=mask), expected)
    # Changing the logits at masked positions changes nothing.
    z2 = z.clone()
    z2[~keep] = 1e3
    torch.testing.assert_close(distillation_loss(z2, v, T, mask=mask), expected)
    # Without a mask, every position counts equally.
    torch.testing.assert_close(distillation_loss(z, v, T), T**2 * cross_entropy_by_hand(z.reshape(-1, 11), v.reshape(-1, 11), T))


def test_identical_distributions_give_the_teacher_entropy_and_zero_gradient(logits):
    _, v = logits
    z = v.clone().requires_grad_()
    T = 3.0
    loss = distillation_loss(z, v, T, scale_by_t2=False)
    q = torch.softmax(v / T, -1)
    torch.testing.assert_close(loss, -(q * q.log()).sum(-1).mean())
    loss.backward()
    torch.testing.assert_close(z.grad, torch.zeros_like(z))


# --- numerical stability --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("T", [0.05, 1.0, 100.0])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_stable_for_extreme_logits_temperatures_and_dtypes(dtype, T, scale):
    g = torch.Generator().manual_seed(3)
    z = (torch.randn(4, 6, generator=g, dtype=torch.float32) * scale).to(dtype).requires_grad_()
    v = (torch.randn(4, 6, generator=g, dtype=torch.float32) * scale).to(dtype)
    loss = distillation_loss(z, v, T)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32, loss.dtype
    assert torch.isfinite(z.grad).all()
    reference = distillation_loss(z.detach().double(), v.double(), T)
    torch.testing.assert_close(loss.double(), reference, rtol=1e-4, atol=1e-3 * T**2)
    p = softmax_with_temperature(z.detach(), T)
    assert p.dtype == dtype and torch.isfinite(p).all()


def test_runs_on_cuda_when_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    z, v = torch.randn(3, 4, device="cuda"), torch.randn(3, 4, device="cuda")
    torch.testing.assert_close(distillation_loss(z, v, 2.0).cpu(), distillation_loss(z.cpu(), v.cpu(), 2.0))


# --- combined loss -------------------------------------------------------------------------------


def test_combined_loss_is_alpha_hard_plus_one_minus_alpha_soft(logits):
    z, v = logits
    labels = torch.tensor([0, 3, 6, 2, 2])
    alpha, T = 0.3, 4.0
    hard = F.cross_entropy(z, labels)  # at temperature 1
    soft = T**2 * cross_entropy_by_hand(z, v, T)
    torch.testing.assert_close(combined_loss(z, v, labels, alpha, T), alpha * hard + (1 - alpha) * soft)
    parts = combined_loss_parts(z, v, labels, alpha, T)
    torch.testing.assert_close(parts.hard, hard)
    torch.testing.assert_close(parts.soft, soft)


def test_combined_loss_extremes_of_alpha(logits):
    z, v = logits
    labels = torch.tensor([0, 3, 6, 2, 2])
    torch.testing.assert_close(combined_loss(z, v, labels, 1.0, 2.0), F.cross_entropy(z, labels))
    torch.testing.assert_close(combined_loss(z, v, labels, 0.0, 2.0), distillation_loss(z, v, 2.0))


def test_combined_loss_ignores_padding_positions_in_both_parts():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 4, 9, generator=g)
    v = torch.randn(2, 4, 9, generator=g)
    labels = torch.tensor([[1, 2, -100, -100], [3, -100, -100, -100]])
    keep = labels != -100
    expected = 0.5 * F.cross_entropy(z[keep], labels[keep]) + 0.5 * 4 * cross_entropy_by_hand(z[keep], v[keep], 2.0)
    torch.testing.assert_close(combined_loss(z, v, labels, 0.5, 2.0), expected)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf"), "2", None, True])
def test_bad_temperature_is_named(logits, T):
    z, v = logits
    for call in (
        lambda: softmax_with_temperature(z, T),
        lambda: distillation_loss(z, v, T),
        lambda: combined_loss(z, v, torch.zeros(5, dtype=torch.long), 0.5, T),
    ):
        with pytest.raises(ValueError, match="temperature"):
            call()


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), None])
def test_alpha_outside_unit_interval_is_named(logits, alpha):
    z, v = logits
    with pytest.raises(ValueError, match="alpha"):
        combined_loss(z, v, torch.zeros(5, dtype=torch.long), alpha, 2.0)


def test_shape_and_vocabulary_mismatches_are_named():
    with pytest.raises(ValueError, match="vocabularies"):
        distillation_loss(torch.randn(3, 5), torch.randn(3, 6), 2.0)
    with pytest.raises(ValueError, match="shape"):
        distillation_loss(torch.randn(3, 5), torch.randn(4, 5), 2.0)


def test_labels_out_of_range_or_misshapen_are_named(logits):
    z, v = logits
    with pytest.raises(ValueError, match="labels must lie in"):
        combined_loss(z, v, torch.tensor([0, 1, 2, 3, 7]), 0.5, 2.0)
    with pytest.raises(ValueError, match="labels must lie in"):
        combined_loss(z, v, torch.tensor([0, 1, 2, 3, -2]), 0.5, 2.0)
    with pytest.raises(ValueError, match="labels must have"):
        combined_loss(z, v, torch.tensor([0, 1]), 0.5, 2.0)
    with pytest.raises(ValueError, match="integer"):
        combined_loss(z, v, torch.zeros(5), 0.5, 2.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_are_named(logits, bad):
    z, v = logits
    z = z.clone()
    z[1, 2] = bad
    with pytest.raises(ValueError, match="student_logits"):
        distillation_loss(z, v, 2.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(v, z, 2.0)


def test_bad_masks_are_named():
    z, v = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="mask must have"):
        distillation_loss(z, v, 2.0, mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="selects no position"):
        distillation_loss(z, v, 2.0, mask=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="0/1"):
        distillation_loss(z, v, 2.0, mask=torch.full((2, 3), 2))
