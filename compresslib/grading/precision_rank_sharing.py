r"""Judges of notebook 04 (precision, rank and sharing): what the hidden tests accept, and the oracle
that answers ``factorize_linear``'s stand-in for ``low_rank_factors``.

Each judge sees one hidden case: its recorded inputs, expected outputs and catalogued wrong outputs
(``fixtures/04_precision_rank_sharing.json``, recorded by ``python -m compresslib.grading.record
04_precision_rank_sharing``), and what the student's functions did on it in the sandbox
(:mod:`compresslib.capture.precision_rank_sharing`). It accepts, or names the likely mistake,
describing the student's own output and never the expected one.

What is accepted beyond the recorded numbers: any integer dtype for the codes; any positive finite
scale for a row of zeros (its codes must be 0); float32 or float64 for the weights read back; the
factors of W up to the sign of each singular pair (their product and their Gram matrices are
compared, not the factors); a factorised layer of any module type; a count that is a whole number,
whatever its Python type.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compresslib.capture.plain import describe, is_tensor
from compresslib.grading.judging import Mistake, as_array, close, judge, require_ok, short
from compresslib.grading.oracle import oracle, tensor
from compresslib.grading.record import precision_rank_sharing as rules

ASSIGNMENT = "04_precision_rank_sharing"
INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
FLOAT_DTYPES = ("float32", "float64")

QUANTIZE_MESSAGES = {
    "scale_from_mean": "the scales come from the mean of |w| over each row: s_c = max_j |w_cj| / (2^(k-1) - 1), "
                       "the row's largest magnitude, so that no weight is clipped",
    "rounding_before_scaling": "the weights were rounded before they were scaled (round(w) / s): divide by the scale "
                               "first, then round, q = round(w / s)",
    "clamp_full_signed_range": "the grid runs from -2^(k-1) to 2^(k-1) - 1 (s = max|w| / 2^(k-1)): the symmetric "
                               "grid leaves out -2^(k-1), codes in [-(2^(k-1) - 1), 2^(k-1) - 1] and "
                               "s = max|w| / (2^(k-1) - 1)",
    "clamp_unsigned_range": "the codes use the unsigned range 2^k - 1 (s = max|w| / (2^k - 1)): k signed bits "
                            "hold codes up to 2^(k-1) - 1",
    "per_tensor_scale": "every row got the same scale (the largest |w| of the whole tensor): per output channel, "
                        "each row c has its own s_c = max_j |w_cj| / (2^(k-1) - 1)",
    "truncated": "the codes were truncated towards zero (an int cast) instead of rounded: round(w / s) to the "
                 "nearest integer, then cast",
}

DEQUANTIZE_MESSAGES = {
    "divides_by_scale": "the codes were divided by the scales: the weight read back is s_c * q_cj",
    "rounds_result": "the weights read back were rounded to integers: s_c * q_cj is a real number, keep it as is",
    "codes_read_unsigned": "negative codes were read as large positive ones (q + 256: a cast to uint8): the codes "
                           "are signed, cast them to float",
    "one_scale_for_all": "every row was multiplied by the same scale: row c uses its own s_c",
    "scales_along_columns": "the scales were applied along the columns (s_j * q_cj): scale c belongs to row c, "
                            "scales[:, None] * codes",
}

FACTOR_MESSAGES = {
    "transposed": "U and V are transposed: return U_r = U[:, :r] sqrt(S_r) (out x r) first and "
                  "V_r = sqrt(S_r) V[:, :r]^T (r x in) second, so that U_r @ V_r approximates W (not W^T)",
    "sigma_missing": "the singular values are missing: U[:, :r] @ V[:, :r]^T has no Sigma; put sqrt(S_r) on each factor",
    "sigma_not_rooted": "U_r @ V_r = U S^2 V^T: each factor got the full S_r; give each its square root, sqrt(S_r)",
    "smallest_singular_values": "the r *smallest* singular values were kept: keep the r largest (the first r, "
                                "torch.linalg.svd sorts them in decreasing order)",
}

FACTORIZE_MESSAGES = {
    "bias_dropped": "the layer computes U_r V_r x without the bias: copy the original bias into the second "
                    "layer (U_r)",
    "rank_ignored": "the layer computes W x + b exactly, at full rank: factorise at the rank you are given",
    "factors_transposed": "the layer computes W_r^T x + b: nn.Linear(in, out).weight has shape (out, in), so the "
                          "first layer's weight is V_r (r x in) and the second's is U_r (out x r), not their transposes",
}

PARAMETER_MESSAGES = {
    "rank_plus_one": "that is (r + 1) (in + out) (+ out): a rank-r factorisation has r columns in U_r and r rows in "
                     "V_r",
    "bias_forgotten": "the bias is not counted: r (in + out) + out when the layer has a bias",
    "first_layer_bias": "r biases too many: only the second layer (U_r, out x r) keeps a bias of out values; the "
                        "first (V_r) has none",
    "dense_count": "that is the dense layer's count in * out (+ out): count the two factors, r (in + out)",
    "product_of_sizes": "that is r * in * out (+ out): the factors hold r * in + out * r values, a sum, not a product",
    "bias_flag_ignored": "the bias is counted although bias=False: add out only when the layer has a bias",
    "bias_of_input_size": "the bias was counted with in values: the bias of the second layer has one value per "
                          "output, out",
}

BYTES_MESSAGES = {
    "bits_not_bytes": "that is the number of bits: divide by 8 for bytes (numel * bits / 8, and 4 bytes per scale)",
    "scales_forgotten": "the scales are not counted: each float32 scale takes 4 bytes beside the packed codes",
    "parameters_not_bytes": "that is the number of values (numel + scales), not their bytes: each value takes "
                            "bits / 8 bytes, each float32 scale 4",
    "floor_division": "the packed codes were rounded down (// 8): a partly filled last byte is still stored, "
                      "ceil(numel * bits / 8)",
    "scales_at_k_bits": "the scales were counted at k bits like the codes: they are float32, 4 bytes each",
    "one_byte_per_code": "each code was given a whole byte: packed, numel codes of k bits take ceil(numel * k / 8) "
                         "bytes",
    "scales_as_float64": "the scales were counted at 8 bytes each: they are float32, 4 bytes each",
}


# --- shared checks ---------------------------------------------------------------------------------------


def check_untouched(observed: Mapping, what: str) -> None:
    changed = observed.get("inputs_changed") or []
    if changed:
        raise Mistake(f"{what} modified its input {', '.join(map(str, changed[:3]))} in place: compute on a copy "
                      "(w / s makes a new tensor; w.div_(s) or w /= s overwrite the caller's)")


def pair(plain, what: str, names: tuple[str, str]) -> tuple[dict, dict]:
    """The two tensors of a returned tuple (or list), or a Mistake saying what came back."""
    if not (isinstance(plain, Mapping) and isinstance(plain.get("sequence"), list) and len(plain["sequence"]) == 2):
        raise Mistake(f"{what} should return a pair ({names[0]}, {names[1]}), got {describe(plain)}")
    first, second = plain["sequence"]
    for name, value in zip(names, (first, second)):
        if not is_tensor(value):
            raise Mistake(f"{what}: {name} should be a tensor, got {describe(value)}")
    return first, second


def dtype_of(plain) -> str:
    return plain["tensor"]["dtype"]


def whole_number(plain, what: str) -> int:
    """A count: an int (or a whole float, or a one-element tensor holding one)."""
    if isinstance(plain, bool):
        raise Mistake(f"{what} should return a number, got a bool")
    if isinstance(plain, int | float):
        value = float(plain)
    elif isinstance(plain, str) and plain in ("nan", "inf", "-inf"):
        raise Mistake(f"{what} returned {plain}: a count is a whole number")
    else:
        array = as_array(plain, what)
        if array.size != 1:
            raise Mistake(f"{what} should return one number, got a tensor of shape {array.shape}")
        value = float(array.reshape(()))
    if not np.isfinite(value) or value != round(value):
        raise Mistake(f"{what} returned {value:g}, which is not a whole number: round up what is partly used "
                      "(math.ceil) and return an int")
    return int(round(value))


def _close_codes(actual: np.ndarray, recorded: np.ndarray) -> bool:
    """Codes equal up to float32-vs-float64 rounding at a boundary: at most one code in twenty, off by one."""
    if actual.shape != recorded.shape:
        return False
    diff = np.abs(actual - recorded)
    return bool(diff.max(initial=0) <= 1 and (diff > 0).sum() <= max(1, actual.size // 20))


# --- quantize_per_channel --------------------------------------------------------------------------------


@judge(ASSIGNMENT, "test_quantize_per_channel")
def quantize_per_channel(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    w = np.asarray(inputs["weight"]["tensor"], dtype=np.float64)
    bits, out_features = inputs["bits"], w.shape[0]
    qmax = rules.qmax(bits)
    what = f"quantize_per_channel(a {inputs['weight']['dtype']} weight of shape {w.shape}, bits={bits})"
    require_ok(observed, what)
    codes_plain, scales_plain = pair(observed["value"], what, ("codes", "scales"))
    codes, scales = as_array(codes_plain, f"{what}: codes"), as_array(scales_plain, f"{what}: scales")
    check_untouched(observed, what)
    if codes.shape != w.shape:
        raise Mistake(f"{what}: the codes have shape {codes.shape}: one code per weight, the weight's shape")
    if scales.shape != (out_features,):
        if scales.shape == (w.shape[1],):
            raise Mistake(f"{what}: the scales have shape {scales.shape}, one per input column (a max over dim 0): "
                          f"per output channel means one scale per row, a max over dim 1, shape ({out_features},)")
        raise Mistake(f"{what}: the scales have shape {scales.shape}: one scale per output row, shape ({out_features},)")
    if dtype_of(codes_plain) not in INTEGER_DTYPES:
        raise Mistake(f"{what}: the codes are a {dtype_of(codes_plain)} tensor: store them as integers "
                      "(.to(torch.int8)), one byte each at most")
    if dtype_of(scales_plain) not in ("float16", "bfloat16", *FLOAT_DTYPES):
        raise Mistake(f"{what}: the scales are a {dtype_of(scales_plain)} tensor: scales are real numbers (float32)")
    zero_rows = ~np.any(w != 0, axis=1)
    if zero_rows.any():
        bad = scales[zero_rows]
        if not np.all(np.isfinite(bad) & (bad > 0)) or np.any(codes[zero_rows] != 0):
            raise Mistake(f"{what}: a row of zeros got scale {short(bad)} and codes {short(codes[zero_rows])}: its "
                          "max |w| is 0, so s = 0 and w / s is 0 / 0. Give such a row scale 1 (its codes are then 0)")
    if np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise Mistake(f"{what}: the scales ({short(scales)}) are not all positive and finite: s_c = max_j |w_cj| / "
                      "(2^(k-1) - 1) uses the magnitudes |w|")
    expected_codes = np.asarray(case["expected"]["codes"])
    expected_scales = np.asarray(case["expected"]["scales"])
    live = ~zero_rows
    scales_right = close(scales[live], expected_scales[live], rtol=1e-5, atol=0)
    if scales_right and np.array_equal(codes, expected_codes):
        return
    for key, message in QUANTIZE_MESSAGES.items():
        wrong = case["wrong"].get(key)
        if wrong and close(scales[live], np.asarray(wrong["scales"])[live], rtol=1e-5, atol=0) \
                and _close_codes(codes, np.asarray(wrong["codes"])):
            raise Mistake(f"{what}: {message}")
    if codes.min() < -qmax or codes.max() > qmax:
        raise Mistake(f"{what}: codes reach {int(codes.min())}..{int(codes.max())}, outside the symmetric {bits}-bit "
                      f"grid [-(2^(k-1) - 1), 2^(k-1) - 1]: clamp to it (and use 2^(k-1) - 1, not 2^k - 1 or 2^(k-1), "
                      "in the scale)")
    if not scales_right:
        raise Mistake(f"{what}: the scales ({short(scales)}) are not max_j |w_cj| / (2^(k-1) - 1), row by row")
    raise Mistake(f"{what}: the scales are right but the codes ({short(codes)}) are not round(w / s) clamped to "
                  "[-(2^(k-1) - 1), 2^(k-1) - 1], row by row")


# --- dequantize_per_channel ------------------------------------------------------------------------------


@judge(ASSIGNMENT, "test_dequantize_per_channel")
def dequantize_per_channel(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    codes = np.asarray(inputs["codes"]["tensor"])
    what = f"dequantize_per_channel(int8 codes of shape {codes.shape}, scales of shape ({codes.shape[0]},))"
    require_ok(observed, what)
    weight = as_array(observed["value"], what)
    check_untouched(observed, what)
    dtype = dtype_of(observed["value"])
    if weight.shape != codes.shape:
        raise Mistake(f"{what} returned shape {weight.shape}: the weight read back has the codes' shape")
    if dtype not in FLOAT_DTYPES:
        raise Mistake(f"{what} returned a {dtype} tensor: the weights read back are real numbers, s_c * q_cj in "
                      "float32 (cast the codes with .float() before multiplying)")
    if close(weight, case["expected"]["weight"], rtol=1e-6, atol=1e-9):
        return
    for key, message in DEQUANTIZE_MESSAGES.items():
        wrong = case["wrong"].get(key)
        if wrong and close(weight, wrong["weight"], rtol=1e-5, atol=1e-7):
            raise Mistake(f"{what}: {message}")
    raise Mistake(f"{what} returned {short(weight)}: that is not s_c * q_cj, each row's codes times its own scale")


# --- low_rank_factors ------------------------------------------------------------------------------------


def _gram_is(gram: np.ndarray, diagonal: np.ndarray, tolerance: float) -> bool:
    return gram.shape == (len(diagonal), len(diagonal)) and np.allclose(gram, np.diag(diagonal), rtol=0, atol=tolerance)


@judge(ASSIGNMENT, "test_low_rank_factors")
def low_rank_factors(case: Mapping, observed: Mapping) -> None:
    inputs = case["inputs"]
    w = np.asarray(inputs["weight"]["tensor"], dtype=np.float64)
    (out_features, in_features), rank = w.shape, inputs["rank"]
    what = f"low_rank_factors(a {inputs['weight']['dtype']} weight of shape {w.shape}, rank={rank})"
    require_ok(observed, what)
    first, second = pair(observed["value"], what, ("U_r", "V_r"))
    a, b = as_array(first, f"{what}: U_r"), as_array(second, f"{what}: V_r")
    check_untouched(observed, what)
    if a.ndim != 2 or b.ndim != 2:
        raise Mistake(f"{what} returned factors of shapes {a.shape} and {b.shape}: both are matrices, "
                      f"U_r ({out_features} x {rank}) and V_r ({rank} x {in_features})")
    if (a.shape, b.shape) == ((in_features, rank), (rank, out_features)) and in_features != out_features:
        raise Mistake(f"{what} returned shapes {a.shape} and {b.shape}: {FACTOR_MESSAGES['transposed']}")
    if a.shape[1] == rank + 1 or b.shape[0] == rank + 1:
        raise Mistake(f"{what} returned shapes {a.shape} and {b.shape}: r + 1 singular values were kept; "
                      "U[:, :r] and S[:r] keep exactly r (Python slices stop before r)")
    if (a.shape, b.shape) != ((out_features, rank), (rank, in_features)):
        raise Mistake(f"{what} returned shapes {a.shape} and {b.shape}: U_r is (out x r) = ({out_features} x {rank}) "
                      f"and V_r is (r x in) = ({rank} x {in_features})")
    expected_dtype = case["expected"]["dtype"]
    if dtype_of(first) != expected_dtype or dtype_of(second) != expected_dtype:
        raise Mistake(f"{what} returned {dtype_of(first)} and {dtype_of(second)} factors: return them in the "
                      f"weight's dtype ({expected_dtype}; compute in float64 if you like, then .to(weight.dtype))")
    sigma = np.asarray(case["expected"]["sigma"])
    tolerance = (1e-4 if expected_dtype == "float32" else 1e-9) * max(1.0, float(sigma[0]))
    product = a @ b
    if not close(product, case["expected"]["product"], rtol=0, atol=tolerance):
        for key, message in FACTOR_MESSAGES.items():
            wrong = case["wrong"].get(key)
            if wrong and close(product, wrong["product"], rtol=0, atol=tolerance):
                raise Mistake(f"{what}: {message}")
        raise Mistake(f"{what}: U_r @ V_r ({short(product)}) is not the truncated SVD U[:, :r] S_r V[:, :r]^T, the "
                      "best rank-r approximation of the weight")
    left, right = a.T @ a, b @ b.T
    if _gram_is(left, sigma**2, tolerance * (1 + sigma[0])) or _gram_is(right, sigma**2, tolerance * (1 + sigma[0])):
        raise Mistake(f"{what}: U_r @ V_r is right, but all of S_r sits on one factor: split it, sqrt(S_r) on each "
                      "(U_r = U[:, :r] sqrt(S_r), V_r = sqrt(S_r) V[:, :r]^T), so that neither carries all the scale "
                      "when both are fine-tuned")
    if not (_gram_is(left, sigma, tolerance) and _gram_is(right, sigma, tolerance)):
        raise Mistake(f"{what}: U_r @ V_r is right, but the factors are not the SVD's balanced split "
                      "U_r = U[:, :r] sqrt(S_r), V_r = sqrt(S_r) V[:, :r]^T (then U_r^T U_r = V_r V_r^T = S_r)")


@oracle(ASSIGNMENT, "low_rank_factors")
def _low_rank_factors_oracle(arguments: Mapping) -> dict:
    """The correct factors of the weight factorize_linear passed (float32; the signs numpy's SVD gives)."""
    rank = arguments["rank"]
    if isinstance(rank, float) and rank == int(rank):
        rank = int(rank)
    a, b = rules.low_rank_factors(np.asarray(arguments["weight"], dtype=np.float64), rank)
    return {"result": {"tuple": [tensor(a), tensor(b)]}}


# --- factorize_linear ------------------------------------------------------------------------------------


FORWARD_HINTS = {
    "cannot be multiplied": "the layers run in the wrong order, or a weight has the wrong shape: the first layer "
                            "maps in -> r with weight V_r (r x in), the second r -> out with weight U_r (out x r)",
    "size of tensor": "the layers run in the wrong order, or a weight has the wrong shape: the first layer maps "
                      "in -> r with weight V_r (r x in), the second r -> out with weight U_r (out x r)",
}


@judge(ASSIGNMENT, "test_factorize_linear")
def factorize_linear(case: Mapping, observed: Mapping) -> None:
    inputs, expected = case["inputs"], case["expected"]
    w = np.asarray(inputs["weight"]["tensor"])
    (out_features, in_features), rank = w.shape, inputs["rank"]
    has_bias = inputs.get("bias") is not None
    what = (f"factorize_linear(nn.Linear({in_features}, {out_features}, bias={has_bias}), rank={rank})")
    require_ok(observed, what)
    if observed.get("linear_changed"):
        raise Mistake(f"{what} modified the layer it was given ({', '.join(observed['linear_changed'][:2])}): "
                      "build a new module and leave the original as it is")
    if observed.get("same_object"):
        raise Mistake(f"{what} returned the layer it was given: return a new module of two layers, V_r then U_r")
    if not observed.get("is_module"):
        raise Mistake(f"{what} returned a {observed.get('returned')}: return an nn.Module (e.g. LowRankLinear, or "
                      "nn.Sequential of two nn.Linear layers)")
    parameters = observed.get("parameters")
    if parameters == 0 or observed.get("trainable") is False:
        raise Mistake(f"{what} returned a module whose factors are not trainable parameters ({parameters} parameter "
                      "values): keep U_r and V_r in nn.Linear layers (or nn.Parameter), so that they can be fine-tuned")
    require_ok(observed.get("output") or {}, f"the layer {what} returned, applied to inputs of shape "
               f"(5, {in_features}),", FORWARD_HINTS)
    output = as_array(observed["output"]["value"], f"the output of the layer {what} returned")
    if output.shape != (5, out_features):
        raise Mistake(f"the layer {what} returned maps inputs of shape (5, {in_features}) to shape {output.shape}: "
                      f"it should map in = {in_features} features to out = {out_features}")
    wrong = case["wrong"]
    if parameters == wrong["first_layer_has_bias"]["parameters"]:
        raise Mistake(f"{what}: the layer has {parameters} parameter values, r = {rank} too many: the first layer "
                      "(V_r) has a bias. Only the second keeps the original bias: nn.Linear(in, r, bias=False)")
    if parameters == wrong["single_dense_layer"]["parameters"] and parameters != expected["parameters"]:
        raise Mistake(f"{what}: the layer has {parameters} parameter values, as many as the dense layer: it stores "
                      "the product U_r V_r as one matrix, which saves nothing. Keep the two factors as two layers")
    scale = 1.0 + float(np.abs(expected["output"]).max())
    if close(output, expected["output"], rtol=1e-4, atol=1e-4 * scale):
        if parameters != expected["parameters"]:
            raise Mistake(f"{what}: the layer computes U_r V_r x + b, but holds {parameters} parameter values: keep "
                          "exactly V_r (r x in), U_r (out x r) and the bias (out), nothing more")
        return
    for key, message in FACTORIZE_MESSAGES.items():
        if key in wrong and "output" in wrong[key] and close(output, wrong[key]["output"], rtol=1e-4, atol=1e-4 * scale):
            raise Mistake(f"{what}: {message}")
    residual = output - (np.asarray(expected["output"]) - np.asarray(expected["bias"]))
    if np.allclose(residual, residual[0], rtol=0, atol=1e-4 * scale):
        raise Mistake(f"{what}: the layer computes U_r V_r x plus a constant {short(residual[0])} that is not the "
                      "original layer's bias: copy the bias into the second layer (u.bias.copy_(linear.bias))")
    raise Mistake(f"{what}: the layer's outputs ({short(output)}) are not U_r (V_r x) + b with the rank-r factors of "
                  "the layer's weight (were the factors copied into the two layers' weights?)")


# --- counts ----------------------------------------------------------------------------------------------


def _judge_count(case: Mapping, observed: Mapping, what: str, messages: Mapping[str, str], formula: str) -> None:
    require_ok(observed, what)
    value = whole_number(observed["value"], what)
    if value == case["expected"]["value"]:
        return
    for key, message in messages.items():
        if case["wrong"].get(key, {}).get("value") == value:
            raise Mistake(f"{what} returned {value}: {message}")
    raise Mistake(f"{what} returned {value}, which is not {formula}")


@judge(ASSIGNMENT, "test_low_rank_parameter_count")
def low_rank_parameter_count(case: Mapping, observed: Mapping) -> None:
    i = case["inputs"]
    what = (f"low_rank_parameter_count(in_features={i['in_features']}, out_features={i['out_features']}, "
            f"rank={i['rank']}, bias={i['bias']})")
    _judge_count(case, observed, what, PARAMETER_MESSAGES, "r (in + out), plus out when the layer has a bias")


@judge(ASSIGNMENT, "test_stored_bytes")
def stored_bytes(case: Mapping, observed: Mapping) -> None:
    i = case["inputs"]
    what = f"stored_bytes({i['numel']}, {i['bits']}" + (f", {i['scales']})" if "scales" in i else ")")
    _judge_count(case, observed, what, BYTES_MESSAGES,
                 "ceil(numel * bits / 8) bytes of packed values plus 4 bytes per float32 scale")
