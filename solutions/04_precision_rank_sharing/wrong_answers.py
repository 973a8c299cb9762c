"""Catalogued wrong answers for 04_precision_rank_sharing: the mistakes students plausibly make.

Each entry replaces one solution cell (``cell``) of a complete submission. The tests grade every entry
(``tests/test_grading_precision.py``, in-process) and check that the test cell ``test`` loses its points
and that its feedback says ``message`` (a regular expression), i.e. names the mistake, while every
other test cell keeps its points. The messages themselves live with the judges
(``compresslib/grading/precision_rank_sharing.py``). Not released to students (nbgrader ignores ``*.py``
in the source folder).
"""

_QUANTIZE = "quantize_per_channel"
_QUANTIZE_TEST = "test_quantize_per_channel"
_DEQUANTIZE = "dequantize_per_channel"
_DEQUANTIZE_TEST = "test_dequantize_per_channel"
_FACTORS = "low_rank_factors"
_FACTORS_TEST = "test_low_rank_factors"
_FACTORIZE = "factorize_linear"
_FACTORIZE_TEST = "test_factorize_linear"
_COUNT = "low_rank_parameter_count"
_COUNT_TEST = "test_low_rank_parameter_count"
_BYTES = "stored_bytes"
_BYTES_TEST = "test_stored_bytes"


def _entry(cell, test, message, code):
    return {"cell": cell, "test": test, "message": message, "code": code}


WRONG_ANSWERS = {
    # --- quantize_per_channel ---------------------------------------------------------------------------
    "scale_from_mean": _entry(_QUANTIZE, _QUANTIZE_TEST, "mean of \\|w\\|", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().mean(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.clamp(torch.round(weight / scales[:, None]), -qmax, qmax)
    return codes.to(torch.int8), scales
'''),
    "rounding_before_scaling": _entry(_QUANTIZE, _QUANTIZE_TEST, "rounded before they were scaled", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.clamp(torch.round(weight) / scales[:, None], -qmax, qmax)
    return codes.to(torch.int8), scales
'''),
    "clamp_full_signed_range": _entry(_QUANTIZE, _QUANTIZE_TEST, "leaves out -2\\^\\(k-1\\)", '''def quantize_per_channel(weight, bits):
    low, high = -2 ** (bits - 1), 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / 2 ** (bits - 1)
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.clamp(torch.round(weight / scales[:, None]), low, high)
    return codes.to(torch.int8), scales
'''),
    "clamp_unsigned_range": _entry(_QUANTIZE, _QUANTIZE_TEST, "unsigned range 2\\^k - 1", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** bits - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.clamp(torch.round(weight / scales[:, None]), -qmax, qmax)
    return codes.to(torch.int8), scales
'''),
    "per_tensor_scale": _entry(_QUANTIZE, _QUANTIZE_TEST, "same scale", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = weight.abs().max() / qmax
    if scale == 0:
        scale = torch.tensor(1.0)
    codes = torch.clamp(torch.round(weight / scale), -qmax, qmax)
    return codes.to(torch.int8), scale.expand(weight.shape[0]).clone()
'''),
    "truncated_not_rounded": _entry(_QUANTIZE, _QUANTIZE_TEST, "truncated towards zero", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.clamp(weight / scales[:, None], -qmax, qmax)
    return codes.to(torch.int8), scales
'''),
    "zero_row_divides_by_zero": _entry(_QUANTIZE, _QUANTIZE_TEST, "row of zeros", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    codes = torch.clamp(torch.round(weight / scales[:, None]), -qmax, qmax)
    return torch.nan_to_num(codes).to(torch.int8), scales
'''),
    "modifies_the_weight": _entry(_QUANTIZE, _QUANTIZE_TEST, "modified its input", '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    weight /= scales[:, None]
    codes = torch.clamp(torch.round(weight), -qmax, qmax)
    return codes.to(torch.int8), scales
'''),
    # --- dequantize_per_channel -------------------------------------------------------------------------
    "divides_by_scale": _entry(_DEQUANTIZE, _DEQUANTIZE_TEST, "divided by the scales", '''def dequantize_per_channel(codes, scales):
    return codes.float() / scales[:, None]
'''),
    "scales_along_columns": _entry(_DEQUANTIZE, _DEQUANTIZE_TEST, "along the columns", '''def dequantize_per_channel(codes, scales):
    return codes.float() * scales
'''),
    "returns_integer_codes_dtype": _entry(_DEQUANTIZE, _DEQUANTIZE_TEST, "returned a int8 tensor", '''def dequantize_per_channel(codes, scales):
    return (codes * scales[:, None]).to(codes.dtype)
'''),
    "rounds_the_result": _entry(_DEQUANTIZE, _DEQUANTIZE_TEST, "rounded to integers", '''def dequantize_per_channel(codes, scales):
    return torch.round(codes.float() * scales[:, None])
'''),
    "codes_read_unsigned": _entry(_DEQUANTIZE, _DEQUANTIZE_TEST, "cast to uint8", '''def dequantize_per_channel(codes, scales):
    return codes.to(torch.uint8).float() * scales[:, None]
'''),
    "one_scale_for_all_rows": _entry(_DEQUANTIZE, _DEQUANTIZE_TEST, "same scale", '''def dequantize_per_channel(codes, scales):
    return codes.float() * scales[0]
'''),
    # --- low_rank_factors -------------------------------------------------------------------------------
    "u_and_v_transposed": _entry(_FACTORS, _FACTORS_TEST, "U and V are transposed", '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.detach(), full_matrices=False)
    root = s[:rank].sqrt()
    return (root[:, None] * vh[:rank]).T, (u[:, :rank] * root).T
'''),
    "rank_r_plus_one": _entry(_FACTORS, _FACTORS_TEST, "r \\+ 1 singular values", '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.detach(), full_matrices=False)
    root = s[:rank + 1].sqrt()
    return u[:, :rank + 1] * root, root[:, None] * vh[:rank + 1]
'''),
    "sigma_on_one_side": _entry(_FACTORS, _FACTORS_TEST, "sits on one factor", '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.detach(), full_matrices=False)
    return u[:, :rank] * s[:rank], vh[:rank].clone()
'''),
    "sigma_missing": _entry(_FACTORS, _FACTORS_TEST, "singular values are missing", '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.detach(), full_matrices=False)
    return u[:, :rank].clone(), vh[:rank].clone()
'''),
    "sigma_not_rooted": _entry(_FACTORS, _FACTORS_TEST, "full S_r", '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.detach(), full_matrices=False)
    return u[:, :rank] * s[:rank], s[:rank, None] * vh[:rank]
'''),
    "smallest_singular_values": _entry(_FACTORS, _FACTORS_TEST, "\\*smallest\\* singular values", '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.detach(), full_matrices=False)
    root = s[-rank:].sqrt()
    return u[:, -rank:] * root, root[:, None] * vh[-rank:]
'''),
    # --- factorize_linear ------------------------------------------------------------------------------
    "first_layer_has_bias": _entry(_FACTORIZE, _FACTORIZE_TEST, "first layer \\(V_r\\) has a bias", '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    first = nn.Linear(linear.in_features, rank)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_(v_r)
        second.weight.copy_(u_r)
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)
'''),
    "bias_dropped": _entry(_FACTORIZE, _FACTORIZE_TEST, "without the bias", '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=False)
    with torch.no_grad():
        layer.v.weight.copy_(v_r)
        layer.u.weight.copy_(u_r)
    return layer
'''),
    "bias_not_copied": _entry(_FACTORIZE, _FACTORIZE_TEST, "not the original layer's bias", '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    with torch.no_grad():
        layer.v.weight.copy_(v_r)
        layer.u.weight.copy_(u_r)
    return layer
'''),
    "single_dense_layer": _entry(_FACTORIZE, _FACTORIZE_TEST, "as many as the dense layer", '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        layer.weight.copy_(u_r @ v_r)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias)
    return layer
'''),
    "factors_transposed_when_copied": _entry(_FACTORIZE, _FACTORIZE_TEST, "W_r\\^T x \\+ b", '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    with torch.no_grad():
        layer.v.weight.copy_(u_r.T)
        layer.u.weight.copy_(v_r.T)
        if linear.bias is not None:
            layer.u.bias.copy_(linear.bias)
    return layer
'''),
    "rank_ignored": _entry(_FACTORIZE, _FACTORIZE_TEST, "factorise at the rank you are given", '''def factorize_linear(linear, rank):
    rank = min(linear.in_features, linear.out_features)  # "keep everything"
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    with torch.no_grad():
        layer.v.weight.copy_(v_r)
        layer.u.weight.copy_(u_r)
        if linear.bias is not None:
            layer.u.bias.copy_(linear.bias)
    return layer
'''),
    "modifies_the_given_layer": _entry(_FACTORIZE, _FACTORIZE_TEST, "modified the layer it was given", '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    with torch.no_grad():
        layer.v.weight.copy_(v_r)
        layer.u.weight.copy_(u_r)
        if linear.bias is not None:
            layer.u.bias.copy_(linear.bias)
        linear.weight.copy_(u_r @ v_r)  # "keep the layer in sync"
    return layer
'''),
    "factors_not_parameters": _entry(_FACTORIZE, _FACTORIZE_TEST, "not trainable parameters", '''class Factorized(nn.Module):
    def __init__(self, u_r, v_r, bias):
        super().__init__()
        self.u_r, self.v_r, self.b = u_r, v_r, bias

    def forward(self, x):
        y = x @ self.v_r.T @ self.u_r.T
        return y if self.b is None else y + self.b


def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    bias = None if linear.bias is None else linear.bias.detach().clone()
    return Factorized(u_r, v_r, bias)
'''),
    # --- low_rank_parameter_count ---------------------------------------------------------------------
    "count_rank_plus_one": _entry(_COUNT, _COUNT_TEST, "\\(r \\+ 1\\) \\(in \\+ out\\)", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return (rank + 1) * (in_features + out_features) + (out_features if bias else 0)
'''),
    "count_bias_forgotten": _entry(_COUNT, _COUNT_TEST, "bias is not counted", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return rank * (in_features + out_features)
'''),
    "count_first_layer_bias": _entry(_COUNT, _COUNT_TEST, "r biases too many", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    total = rank * in_features + out_features * rank
    if bias:
        total += rank + out_features
    return total
'''),
    "count_dense": _entry(_COUNT, _COUNT_TEST, "dense layer's count", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return in_features * out_features + (out_features if bias else 0)
'''),
    "count_product_of_sizes": _entry(_COUNT, _COUNT_TEST, "a sum, not a product", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return rank * in_features * out_features + (out_features if bias else 0)
'''),
    "count_bias_flag_ignored": _entry(_COUNT, _COUNT_TEST, "although bias=False", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return rank * (in_features + out_features) + out_features
'''),
    "count_bias_of_input_size": _entry(_COUNT, _COUNT_TEST, "counted with in values", '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return rank * (in_features + out_features) + (in_features if bias else 0)
'''),
    # --- stored_bytes -----------------------------------------------------------------------------------
    "bits_not_bytes": _entry(_BYTES, _BYTES_TEST, "number of bits", '''def stored_bytes(numel, bits, scales=0):
    return numel * bits + 32 * scales
'''),
    "scales_forgotten": _entry(_BYTES, _BYTES_TEST, "scales are not counted", '''def stored_bytes(numel, bits, scales=0):
    return math.ceil(numel * bits / 8)
'''),
    "bytes_counted_as_parameters": _entry(_BYTES, _BYTES_TEST, "number of values", '''def stored_bytes(numel, bits, scales=0):
    return numel + scales
'''),
    "floor_not_ceil": _entry(_BYTES, _BYTES_TEST, "rounded down", '''def stored_bytes(numel, bits, scales=0):
    return numel * bits // 8 + 4 * scales
'''),
    "scales_at_k_bits": _entry(_BYTES, _BYTES_TEST, "scales were counted at k bits", '''def stored_bytes(numel, bits, scales=0):
    return math.ceil((numel + scales) * bits / 8)
'''),
    "one_byte_per_code": _entry(_BYTES, _BYTES_TEST, "whole byte", '''def stored_bytes(numel, bits, scales=0):
    return numel * math.ceil(bits / 8) + 4 * scales
'''),
    "scales_as_float64": _entry(_BYTES, _BYTES_TEST, "8 bytes each", '''def stored_bytes(numel, bits, scales=0):
    return math.ceil(numel * bits / 8) + 8 * scales
'''),
}

# The mistake shown in the shipped example submissions (examples/submissions/mistake/...).
EXAMPLE_MISTAKE = "scales_forgotten"
