"""Uniform k-bit quantisation: the closed forms (scales, code range, error bound, rounding), the round
trip on the grid, packing, the model-level paths (fake, packed k-bit, PyTorch's int8, casts), errors."""

import itertools

import pytest
import torch
from torch import nn

from compresslib.quantize import (
    QuantizedLinear,
    QuantizedTensor,
    cast,
    code_range,
    dequantize,
    dequantize_per_channel,
    dynamic_int8,
    fake_quantize,
    fake_quantize_linears,
    pack_codes,
    quantize,
    quantize_linears,
    quantize_per_channel,
    unpack_codes,
)
from tiny_models import tiny_bert, token_batch

SCHEMES = list(itertools.product(range(2, 9), [True, False], [True, False]))  # bits, symmetric, per_channel


def weight(shape=(6, 10), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def row_scales(q):
    return q.scale[:, None] if q.per_channel else q.scale


@pytest.mark.parametrize("bits,symmetric,per_channel", SCHEMES)
def test_codes_lie_in_range_and_error_is_at_most_half_a_step(bits, symmetric, per_channel):
    w = weight() * 3
    q = quantize(w, bits, symmetric=symmetric, per_channel=per_channel)
    low, high = code_range(bits, symmetric)
    assert q.codes.dtype == (torch.int8 if symmetric else torch.uint8)
    assert int(q.codes.min()) >= low and int(q.codes.max()) <= high
    error = (w - dequantize(q)).abs()
    assert (error <= row_scales(q) / 2 * (1 + 1e-5)).all()


@pytest.mark.parametrize("bits", range(2, 9))
def test_symmetric_code_range_leaves_out_the_most_negative_code(bits):
    qmax = 2 ** (bits - 1) - 1
    assert code_range(bits, True) == (-qmax, qmax)
    assert code_range(bits, False) == (0, 2**bits - 1)
    q = quantize(weight() * 10, bits)
    assert int(q.codes.min()) >= -qmax  # never -2^(k-1)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_channel_scales_are_row_max_over_qmax(bits):
    w = weight()
    w[2] *= 100  # one large row must not coarsen the others
    codes, scales = quantize_per_channel(w, bits)
    qmax = 2 ** (bits - 1) - 1
    assert scales.shape == (w.shape[0],) and scales.dtype == torch.float32
    assert torch.allclose(scales, w.abs().amax(dim=1) / qmax)
    assert codes.shape == w.shape and codes.dtype == torch.int8
    # the largest weight of each row lands on +-qmax
    assert torch.equal(codes.abs().amax(dim=1), torch.full((w.shape[0],), qmax, dtype=torch.int8))
    # per tensor: one scale from the global max
    assert torch.allclose(quantize(w, bits, per_channel=False).scale, w.abs().max() / qmax)
    # a mean-based scale (a plausible wrong answer) would clamp: check the max really is used
    assert not torch.allclose(scales, w.abs().mean(dim=1) / qmax)


@pytest.mark.parametrize("bits", range(2, 9))
def test_values_on_the_grid_round_trip_exactly(bits):
    qmax = 2 ** (bits - 1) - 1
    g = torch.Generator().manual_seed(bits)
    codes = torch.randint(-qmax, qmax + 1, (5, 9), generator=g)
    codes[:, 0] = qmax  # each row reaches the top of the grid, so its scale is recovered
    scales = torch.tensor([0.5, 0.25, 2.0, 0.125, 1.0])  # powers of two: s * q is exact in float32
    w = codes.float() * scales[:, None]
    got_codes, got_scales = quantize_per_channel(w, bits)
    assert torch.equal(got_scales, scales)
    assert torch.equal(got_codes.long(), codes)
    assert torch.equal(dequantize_per_channel(got_codes, got_scales), w)


def test_rounding_is_half_to_even_and_scaling_comes_before_rounding():
    w = torch.tensor([[0.5, 1.5, 2.5, -2.5, 7.0]])  # 4 bits: qmax = 7, s = 1, so w / s is w itself
    codes, scales = quantize_per_channel(w, 4)
    assert scales.item() == 1.0
    assert codes.tolist() == [[0, 2, 2, -2, 7]]  # round-half-up would give 1, 2, 3, -2
    w = torch.tensor([[0.3, 1.4]])  # s = 0.2 at 4 bits: round(w / s) = 2 (1.5 -> 2), 7; round(w) / s would differ
    codes, scales = quantize_per_channel(w, 4)
    assert codes.tolist() == [[2, 7]]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_asymmetric_covers_min_to_max_and_keeps_zero_exact(bits):
    w = torch.tensor([[-0.3, 0.0, 0.2, 1.7, 0.9], [0.5, 1.0, 2.0, 0.0, 0.25], [-4.0, -1.0, -0.5, 0.0, -2.0]])
    q = quantize(w, bits, symmetric=False)
    lo, hi = w.amin(dim=1).clamp(max=0), w.amax(dim=1).clamp(min=0)
    assert torch.allclose(q.scale, (hi - lo) / (2**bits - 1))
    back = dequantize(q)
    assert (back[w == 0] == 0).all()  # zero (a pruned weight) is stored exactly
    for row in range(3):  # the ends of the range are read back within half a step
        assert abs(back[row].min() - w[row].min()) <= q.scale[row] / 2 * (1 + 1e-6)
        assert abs(back[row].max() - w[row].max()) <= q.scale[row] / 2 * (1 + 1e-6)
    # an all-positive row starts at zero point 0 and reaches the top code
    assert q.zero_point[1] == 0 and int(q.codes[1].max()) == 2**bits - 1


def test_a_row_of_zeros_gets_scale_one_and_reads_back_as_zero():
    w = weight()
    w[3] = 0
    for symmetric in (True, False):
        q = quantize(w, 4, symmetric=symmetric)
        assert q.scale[3] == 1.0
        assert (dequantize(q)[3] == 0).all()
    assert (quantize(torch.zeros(3, 3), 8, per_channel=False).scale == 1).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_lower_and_higher_precision_weights_are_quantised_in_float32(dtype):
    w = weight().to(dtype)
    q = quantize(w, 8)
    assert q.scale.dtype == torch.float32
    assert torch.equal(q.codes, quantize(w.float(), 8).codes)
    assert fake_quantize(w, 8).dtype == dtype


def test_fake_quantize_is_dequantize_of_quantize():
    w = weight()
    for symmetric, per_channel in itertools.product([True, False], repeat=2):
        expected = dequantize(quantize(w, 3, symmetric=symmetric, per_channel=per_channel))
        assert torch.equal(fake_quantize(w, 3, symmetric=symmetric, per_channel=per_channel), expected)


def test_more_bits_never_increase_the_error():
    w = weight((32, 64))
    errors = [(w - fake_quantize(w, bits)).pow(2).sum().item() for bits in range(2, 9)]
    assert all(a > b for a, b in zip(errors, errors[1:]))


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 9, 0, -4, 4.0, True, "8", None])
def test_bits_outside_2_to_8_are_refused(bits):
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 8"):
        quantize(weight(), bits)
    with pytest.raises(ValueError, match="bits"):
        quantize_linears(nn.Linear(3, 2), bits)


@pytest.mark.parametrize("bad,words", [
    (torch.ones(3, 3, dtype=torch.int32), "floating-point"),
    (torch.ones(3, 3, dtype=torch.bool), "floating-point"),
    (torch.tensor([[1.0, float("nan")]]), "NaN or infinite"),
    (torch.tensor([[1.0, float("inf")]]), "NaN or infinite"),
    (torch.ones(0, 3), "empty"),
    (torch.ones(5), "per-channel"),
    ([[1.0, 2.0]], "torch.Tensor"),
])
def test_bad_weights_are_refused(bad, words):
    with pytest.raises(ValueError, match=words):
        quantize(bad, 8)


def test_a_vector_can_be_quantised_per_tensor():
    q = quantize(torch.tensor([0.5, -1.0, 0.25]), 8, per_channel=False)
    assert q.scale.shape == () and torch.allclose(dequantize(q), torch.tensor([0.5, -1.0, 0.25]), atol=1 / 254)


@pytest.mark.parametrize("scales,words", [
    (torch.tensor([1.0, 0.0, 1.0]), "positive and finite"),
    (torch.tensor([1.0, -0.5, 1.0]), "positive and finite"),
    (torch.tensor([1.0, float("nan"), 1.0]), "positive and finite"),
    (torch.tensor([1.0, 1.0]), "shape"),
    (torch.tensor(1.0), "1-D"),
])
def test_dequantize_refuses_zero_negative_or_misshapen_scales(scales, words):
    with pytest.raises(ValueError, match=words):
        dequantize_per_channel(torch.ones(3, 4, dtype=torch.int8), scales)


def test_dequantize_refuses_float_codes_and_the_typed_result_checks_itself():
    with pytest.raises(ValueError, match="integer tensor"):
        dequantize_per_channel(torch.ones(3, 4), torch.ones(3))
    with pytest.raises(ValueError, match="positive and finite"):
        QuantizedTensor(torch.ones(3, 4, dtype=torch.int8), torch.tensor([1.0, 0.0, 1.0]), None, 8)
    with pytest.raises(ValueError, match=r"codes must lie in \[-1, 1\]"):
        QuantizedTensor(torch.full((3, 4), 2, dtype=torch.int8), torch.ones(3), None, 2)
    with pytest.raises(ValueError, match="uint8"):
        QuantizedTensor(torch.ones(3, 4, dtype=torch.int8), torch.ones(3), torch.zeros(3, dtype=torch.uint8), 8)
    with pytest.raises(ValueError, match="QuantizedTensor"):
        dequantize(torch.ones(3))


# --- packing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,symmetric", list(itertools.product(range(2, 9), [True, False])))
def test_packing_round_trips_in_ceil_n_k_over_8_bytes(bits, symmetric):
    low, high = code_range(bits, symmetric)
    codes = torch.randint(low, high + 1, (7, 13), generator=torch.Generator().manual_seed(bits))
    codes = codes.to(torch.int8 if symmetric else torch.uint8)
    packed = pack_codes(codes, bits, low)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-91 * bits // 8)  # ceil(91 k / 8)
    assert torch.equal(unpack_codes(packed, bits, low, codes.shape, codes.dtype), codes)


def test_packed_bit_layout_is_little_endian_least_significant_first():
    assert pack_codes(torch.tensor([1, 2, 15]), 4, 0).tolist() == [0x21, 0x0F]
    # 3 bits: 5 = 101, 3 = 011, 7 = 111 -> bits 1,0,1, 1,1,0, 1,1,1 -> byte 0b11011101, then 0b1
    assert pack_codes(torch.tensor([5, 3, 7]), 3, 0).tolist() == [0b11011101, 0b1]
    assert pack_codes(torch.tensor([-1, 0, 1]), 2, -1).tolist() == [0b100100]


def test_packing_refuses_codes_out_of_range():
    with pytest.raises(ValueError, match="must lie in"):
        pack_codes(torch.tensor([0, 8]), 3, 0)


# --- model level ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,symmetric,per_channel", [(4, True, True), (3, False, True), (8, True, False), (2, False, False)])
def test_quantized_linear_computes_what_the_fake_quantised_linear_computes(bits, symmetric, per_channel):
    torch.manual_seed(0)
    linear = nn.Linear(10, 6)
    layer = QuantizedLinear.from_linear(linear, bits, symmetric=symmetric, per_channel=per_channel)
    fake = fake_quantize_linears(nn.Sequential(linear), bits, symmetric=symmetric, per_channel=per_channel)[0]
    x = torch.randn(4, 10)
    assert torch.allclose(layer(x), fake(x), atol=1e-6)
    assert layer.packed.numel() == -(-60 * bits // 8)
    assert set(layer.state_dict()) == {"packed", "scale", "bias"} | ({"zero_point"} if not symmetric else set())


def test_quantize_linears_copies_by_default_and_keeps_shared_layers_shared():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 2))
    before = shared.weight.detach().clone()
    quantized = quantize_linears(model, 4)
    assert isinstance(quantized[0], QuantizedLinear) and quantized[0] is quantized[2]
    assert isinstance(model[0], nn.Linear) and torch.equal(model[0].weight, before)
    only_last = quantize_linears(model, 4, pattern=r"^3$")
    assert isinstance(only_last[3], QuantizedLinear) and isinstance(only_last[0], nn.Linear)
    with pytest.raises(ValueError, match="no nn.Linear"):
        quantize_linears(model, 4, pattern="attention")


def test_fake_quantize_linears_puts_every_weight_on_its_grid_and_takes_a_students_quantizer():
    model = tiny_bert()
    fake = fake_quantize_linears(model, 4)
    for name, module in fake.named_modules():
        if isinstance(module, nn.Linear):
            assert torch.equal(fake_quantize(module.weight, 4), module.weight), name  # already on the grid
    assert not torch.equal(fake.classifier.weight, model.classifier.weight)  # the original is untouched

    def student(w, bits):
        codes, scales = quantize_per_channel(w, bits)
        return dequantize_per_channel(codes, scales)

    theirs = fake_quantize_linears(model, 4, quantizer=student)
    assert torch.equal(theirs.bert.encoder.layer[1].output.dense.weight, fake.bert.encoder.layer[1].output.dense.weight)
    with pytest.raises(ValueError, match="shape"):
        fake_quantize_linears(model, 4, quantizer=lambda w, bits: w[0])
    with pytest.raises(ValueError, match="not both"):
        fake_quantize_linears(model, 4, quantizer=student, symmetric=False)


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_int8_runs_int8_kernels_close_to_fp32(per_channel):
    model = tiny_bert()
    quantized = dynamic_int8(model, per_channel=per_channel)
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    layers = [m for m in quantized.modules() if isinstance(m, DynamicLinear)]
    assert len(layers) == 2 * 6 + 2  # six per encoder layer, the pooler and the classifier
    scheme = torch.per_channel_affine if per_channel else torch.per_tensor_affine
    assert all(m.weight().qscheme() == scheme for m in layers)
    batch = token_batch()
    with torch.no_grad():
        ref, got = model(**batch).logits, quantized(**batch).logits
    assert torch.allclose(ref, got, atol=0.05 * ref.abs().max().item())
    assert not any(isinstance(m, DynamicLinear) for m in model.modules())  # a copy


def test_dynamic_int8_quantises_the_chosen_layers_and_keeps_shared_layers_shared():
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from compresslib.lowrank import FFN_PATTERN
    from compresslib.share import share_layers

    model = share_layers(tiny_bert(layers=3))
    ffn_only = dynamic_int8(model, pattern=FFN_PATTERN)
    layer = ffn_only.bert.encoder.layer[0]
    assert isinstance(layer.intermediate.dense, DynamicLinear) and isinstance(layer.output.dense, DynamicLinear)
    assert isinstance(layer.attention.output.dense, nn.Linear) and isinstance(ffn_only.classifier, nn.Linear)
    assert all(position is layer for position in ffn_only.bert.encoder.layer)


def test_dynamic_int8_refuses_a_model_off_the_cpu_like_device():
    class OffCpu(nn.Module):
        def parameters(self, recurse=True):
            yield torch.empty(1, device="meta")

    with pytest.raises(ValueError, match="CPU"):
        dynamic_int8(OffCpu())


@pytest.mark.slow
def test_dynamic_int8_of_the_teacher_stays_close_to_fp32():
    """All-MiniLM-L6-v2 on two reviews: 8-bit weights alone (fake quantised) barely move the encoder's
    outputs; dynamic int8 also quantises the activations (per tensor, 7 bits on x86), which moves them
    more, per-channel weights less than per-tensor ones (measured cosines: 0.9996, 0.970, 0.925)."""
    from compresslib.models import load_classifier, load_tokenizer

    teacher = load_classifier().eval()
    batch = dict(load_tokenizer()(["a gripping, beautifully acted film that never lets up",
                                   "dull and lifeless, the plot goes nowhere at all"], return_tensors="pt", padding=True))

    def mean_cosine(model):
        with torch.no_grad():
            ref, got = teacher.bert(**batch).last_hidden_state, model.bert(**batch).last_hidden_state
        return nn.functional.cosine_similarity(ref, got, dim=-1).mean().item()

    weights_only, per_channel, per_tensor = (mean_cosine(fake_quantize_linears(teacher, 8)),
                                             mean_cosine(dynamic_int8(teacher, per_channel=True)),
                                             mean_cosine(dynamic_int8(teacher, per_channel=False)))
    assert weights_only > 0.999
    assert 0.95 < per_channel < weights_only
    assert 0.9 < per_tensor < per_channel


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cast_halves_every_float_tensor_and_copies(dtype):
    model = tiny_bert()
    half = cast(model, dtype)
    assert all(p.dtype == dtype for p in half.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(ValueError, match="dtype must be one of"):
        cast(model, torch.int8)
