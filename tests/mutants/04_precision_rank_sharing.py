"""Held-out wrong answers for 04_precision_rank_sharing: plausible student mistakes that are NOT in the
catalog (``solutions/04_precision_rank_sharing/wrong_answers.py``) and that the judges were not written
against (the fixture records no output of theirs).

Same entry format as the catalog (``cell``: the grade_id of the solution cell replaced, ``code``: what
the student wrote); no message: ``tests/test_grading_mutants.py`` only asserts that at least one
hidden test fails. The kill rate of this corpus measures how well the hidden tests generalise.
"""

MUTANTS = {
    # --- quantize_per_channel ---------------------------------------------------------------------------
    "q_floor_not_round": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales[scales == 0] = 1.0
    return torch.floor(weight / scales[:, None]).clamp(-qmax, qmax).to(torch.int8), scales
''',
    },
    "q_signed_max": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.amax(dim=1) / qmax
    scales = torch.where(scales != 0, scales, torch.ones_like(scales))
    codes = torch.round(weight / scales.unsqueeze(1)).clamp(-qmax, qmax)
    return codes.to(torch.int8), scales
''',
    },
    "q_max_over_columns": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=0) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.round(weight / scales).clamp(-qmax, qmax)
    return codes.to(torch.int8), scales
''',
    },
    "q_returns_multiplier_not_scale": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    peak = weight.abs().amax(dim=1)
    multiplier = torch.where(peak > 0, qmax / peak, torch.ones_like(peak))
    codes = torch.round(weight * multiplier[:, None]).clamp(-qmax, qmax)
    return codes.to(torch.int8), multiplier
''',
    },
    "q_codes_left_as_floats": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    return torch.round(weight / scales[:, None]).clamp(-qmax, qmax), scales
''',
    },
    "q_uint8_codes": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1) - 1
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    return torch.round(weight / scales[:, None]).clamp(-qmax, qmax).to(torch.uint8), scales
''',
    },
    "q_no_minus_one_no_clamp": {
        "cell": "quantize_per_channel",
        "code": '''def quantize_per_channel(weight, bits):
    qmax = 2 ** (bits - 1)
    scales = weight.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    return torch.round(weight / scales[:, None]).to(torch.int8), scales
''',
    },
    # --- dequantize_per_channel -------------------------------------------------------------------------
    "dq_half_precision": {
        "cell": "dequantize_per_channel",
        "code": '''def dequantize_per_channel(codes, scales):
    return codes.half() * scales.half()[:, None]
''',
    },
    "dq_unsqueezes_scales_in_place": {
        "cell": "dequantize_per_channel",
        "code": '''def dequantize_per_channel(codes, scales):
    scales.unsqueeze_(1)
    return codes.float() * scales
''',
    },
    "dq_midpoint_reconstruction": {
        "cell": "dequantize_per_channel",
        "code": '''def dequantize_per_channel(codes, scales):
    return (codes.float() + 0.5) * scales[:, None]
''',
    },
    "dq_transposed": {
        "cell": "dequantize_per_channel",
        "code": '''def dequantize_per_channel(codes, scales):
    return (codes.float() * scales[:, None]).T.contiguous()
''',
    },
    # --- low_rank_factors -------------------------------------------------------------------------------
    "lr_rows_of_v_not_vt": {
        "cell": "low_rank_factors",
        "code": '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    v = vh.T
    root = torch.sqrt(s[:rank])
    return u[:, :rank] * root, root[:, None] * v[:rank, :]
''',
    },
    "lr_torch_svd_v_used_as_vh": {
        "cell": "low_rank_factors",
        "code": '''def low_rank_factors(weight, rank):
    u, s, v = torch.svd(weight)
    root = torch.diag(s[:rank].sqrt())
    return u[:, :rank] @ root, root @ v[:rank]
''',
    },
    "lr_float64_factors": {
        "cell": "low_rank_factors",
        "code": '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]
''',
    },
    "lr_sqrt_only_on_u": {
        "cell": "low_rank_factors",
        "code": '''def low_rank_factors(weight, rank):
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    return u[:, :rank] * s[:rank].sqrt(), vh[:rank].clone()
''',
    },
    "lr_eigh_ascending": {
        "cell": "low_rank_factors",
        "code": '''def low_rank_factors(weight, rank):
    w = weight.double()
    evals, u = torch.linalg.eigh(w @ w.T)          # ascending eigenvalues
    s = evals.clamp(min=0).sqrt()
    u_r, s_r = u[:, :rank], s[:rank]
    v_r = (u_r.T @ w) / s_r.clamp(min=1e-12)[:, None]
    root = s_r.sqrt()
    return (u_r * root).to(weight.dtype), (root[:, None] * v_r).to(weight.dtype)
''',
    },
    # --- factorize_linear ------------------------------------------------------------------------------
    "fl_layers_in_the_wrong_order": {
        "cell": "factorize_linear",
        "code": '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    first = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    second = nn.Linear(linear.in_features, rank, bias=False)
    with torch.no_grad():
        first.weight.copy_(u_r)
        second.weight.copy_(v_r)
        if linear.bias is not None:
            first.bias.copy_(linear.bias)
    return nn.Sequential(first, second)
''',
    },
    "fl_factors_never_copied": {
        "cell": "factorize_linear",
        "code": '''def factorize_linear(linear, rank):
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    if linear.bias is not None:
        with torch.no_grad():
            layer.u.bias.copy_(linear.bias)
    return layer
''',
    },
    "fl_first_bias_zeroed": {
        "cell": "factorize_linear",
        "code": '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    first, second = nn.Linear(linear.in_features, rank), nn.Linear(rank, linear.out_features)
    with torch.no_grad():
        first.weight.copy_(v_r)
        first.bias.zero_()
        second.weight.copy_(u_r)
        second.bias.copy_(linear.bias if linear.bias is not None else torch.zeros(linear.out_features))
    return nn.Sequential(first, second)
''',
    },
    "fl_frozen_factors": {
        "cell": "factorize_linear",
        "code": '''def factorize_linear(linear, rank):
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    with torch.no_grad():
        layer.v.weight.copy_(v_r)
        layer.u.weight.copy_(u_r)
        if linear.bias is not None:
            layer.u.bias.copy_(linear.bias)
    return layer.requires_grad_(False)  # the factors come from the SVD: nothing to learn
''',
    },
    # --- low_rank_parameter_count ---------------------------------------------------------------------
    "pc_sigma_as_a_matrix": {
        "cell": "low_rank_parameter_count",
        "code": '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return out_features * rank + rank * rank + rank * in_features + (out_features if bias else 0)
''',
    },
    "pc_bias_per_rank": {
        "cell": "low_rank_parameter_count",
        "code": '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return rank * (in_features + out_features + (1 if bias else 0))
''',
    },
    "pc_min_dimension": {
        "cell": "low_rank_parameter_count",
        "code": '''def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    return 2 * rank * min(in_features, out_features) + (out_features if bias else 0)
''',
    },
    # --- stored_bytes -----------------------------------------------------------------------------------
    "sb_round_not_ceil": {
        "cell": "stored_bytes",
        "code": '''def stored_bytes(numel, bits, scales=0):
    return round(numel * bits / 8) + 4 * scales
''',
    },
    "sb_scales_in_bits": {
        "cell": "stored_bytes",
        "code": '''def stored_bytes(numel, bits, scales=0):
    return math.ceil(numel * bits / 8) + 32 * scales
''',
    },
    "sb_no_rounding": {
        "cell": "stored_bytes",
        "code": '''def stored_bytes(numel, bits, scales=0):
    return numel * bits / 8 + 4 * scales
''',
    },
    "sb_integer_division_of_bits": {
        "cell": "stored_bytes",
        "code": '''def stored_bytes(numel, bits, scales=0):
    return numel * (bits // 8) + 4 * scales
''',
    },
    "sb_half_precision_scales": {
        "cell": "stored_bytes",
        "code": '''def stored_bytes(numel, bits, scales=0):
    return math.ceil(numel * bits / 8) + 2 * scales
''',
    },
    "sb_always_float32": {
        "cell": "stored_bytes",
        "code": '''def stored_bytes(numel, bits, scales=0):
    return 4 * numel + 4 * scales
''',
    },
}
