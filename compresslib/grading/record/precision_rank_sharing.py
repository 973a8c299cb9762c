r"""Record the fixture of notebook 04 (precision, rank and sharing): hidden inputs, expected outputs,
catalogued wrong outputs.

Expected values are the notebook's formulas in NumPy float64, independent of ``compresslib.quantize``,
``compresslib.svd`` and ``compresslib.ledger`` (whose tests check them against the same closed forms):

* symmetric per-output-channel k-bit quantisation: :math:`q_{max} = 2^{k-1} - 1`,
  :math:`s_c = \max_j |w_{cj}| / q_{max}` (1 for a row of zeros),
  :math:`q_{cj} = \mathrm{clamp}(\mathrm{round}(w_{cj} / s_c), -q_{max}, q_{max})`; dequantisation
  :math:`\hat w_{cj} = s_c q_{cj}`;
* the rank-r factors of :math:`W = U \Sigma V^\top`: :math:`U_r = U_{:, :r}\Sigma_{:r}^{1/2}` (out x r),
  :math:`V_r = \Sigma_{:r}^{1/2} V_{:, :r}^\top` (r x in). The factors are unique only up to the sign of
  each singular pair, so the fixture records what does not depend on the signs: the product
  :math:`U_r V_r = W_r` (Eckart-Young's best rank-r approximation) and :math:`\sigma_1..\sigma_r`
  (a balanced split has :math:`U_r^\top U_r = V_r V_r^\top = \Sigma_r`);
* a factorised linear layer computes :math:`y = U_r (V_r x) + b` with :math:`r (in + out) + out`
  parameters (``+ out`` only with a bias);
* bytes of ``numel`` values stored at ``bits`` each, packed, plus float32 scales:
  :math:`\lceil numel \cdot bits / 8 \rceil + 4 \cdot scales`.

Quantisation inputs are float32 draws kept away from rounding ties (every :math:`|w / s|` at least
1e-3 from a half-integer, in float32 and float64 alike), so any correct rounding rule gives the same
codes. SVD inputs have distinct singular values (:math:`W_r` unique). Each catalogued wrong answer's
output is computed by the same formulas with that one mistake.
"""

from __future__ import annotations

import math

import numpy as np

ASSIGNMENT = "04_precision_rank_sharing"
NOTE = ("NumPy float64 closed forms: per-channel symmetric rounding (inputs kept 1e-3 from ties), "
        "numpy.linalg.svd for W_r and sigma (sign-free quantities only), ceil(numel * bits / 8) + 4 * scales")

FACTORS_SIGNATURE = ["weight", "rank"]
# The earlier function factorize_linear's stand-in may ask the grader's oracle for (its scope).
FACTORIZE_STAND_INS = {"low_rank_factors": {"signature": FACTORS_SIGNATURE}}
SCALE_BYTES = 4


def tensor(array, dtype: str = "float32") -> dict:
    return {"tensor": np.asarray(array).astype(dtype).tolist(), "dtype": dtype}


def floats(array) -> list:
    return np.asarray(array, dtype=np.float64).tolist()


# --- quantisation -------------------------------------------------------------------------------------


def qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def _scales(magnitude: np.ndarray, divisor: float) -> np.ndarray:
    return np.where(magnitude > 0, magnitude / divisor, 1.0)


def quantize_per_channel(w, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, scales)``: s_c = max_j |w_cj| / qmax (1 for a zero row), q = clamp(round(w / s), +-qmax)."""
    w = np.asarray(w, dtype=np.float64)
    q = qmax(bits)
    s = _scales(np.abs(w).max(axis=1), q)
    return np.clip(np.rint(w / s[:, None]), -q, q), s


def dequantize_per_channel(codes, scales) -> np.ndarray:
    """w_hat_cj = s_c q_cj."""
    return np.asarray(codes, dtype=np.float64) * np.asarray(scales, dtype=np.float64)[:, None]


def quantize_mistakes(w, bits: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{mistake: (codes, scales)}`` of the catalogued wrong quantisations of ``w``."""
    w = np.asarray(w, dtype=np.float64)
    q = qmax(bits)
    s = _scales(np.abs(w).max(axis=1), q)
    mean_s = _scales(np.abs(w).mean(axis=1), q)
    tensor_s = np.full(len(w), _scales(np.abs(w).max(), q))
    signed_s = _scales(np.abs(w).max(axis=1), 2 ** (bits - 1))
    unsigned_s = _scales(np.abs(w).max(axis=1), 2**bits - 1)
    return {
        "scale_from_mean": (np.clip(np.rint(w / mean_s[:, None]), -q, q), mean_s),
        "rounding_before_scaling": (np.trunc(np.clip(np.rint(w) / s[:, None], -q, q)), s),
        "clamp_full_signed_range": (np.clip(np.rint(w / signed_s[:, None]), -(q + 1), q), signed_s),
        "clamp_unsigned_range": (np.clip(np.rint(w / unsigned_s[:, None]), -(2**bits - 1), 2**bits - 1), unsigned_s),
        "per_tensor_scale": (np.clip(np.rint(w / tensor_s[:, None]), -q, q), tensor_s),
        "truncated": (np.trunc(w / s[:, None]), s),
    }


def tie_margin(w32: np.ndarray, bits: int) -> float:
    """How far every |w / s| is from a half-integer, in float64 and in float32 arithmetic."""
    q = qmax(bits)
    margins = []
    for dtype in (np.float64, np.float32):
        w = w32.astype(dtype)
        m = np.abs(w).max(axis=1)
        s = np.where(m > 0, m / dtype(q), dtype(1)).astype(dtype)
        ratio = np.abs(w / s[:, None]).astype(np.float64)
        margins.append(np.abs(ratio - np.floor(ratio) - 0.5).min())
    return float(min(margins))


def tie_free(rng, shape, *, scale=1.0, row_scales=None, zero_rows=(), negative_rows=(), bits: int) -> np.ndarray:
    """A float32 weight of ``shape`` (rows scaled by ``row_scales``, some rows zero or all negative) whose
    every |w / s| is at least 1e-3 from a half-integer."""
    for _ in range(1000):
        w = rng.normal(size=shape) * scale
        if row_scales is not None:
            w = w * np.asarray(row_scales, dtype=np.float64)[:, None]
        for row in negative_rows:
            w[row] = -np.abs(w[row])
        for row in zero_rows:
            w[row] = 0.0
        w = w.astype(np.float32)
        if tie_margin(w, bits) > 1e-3:
            return w
    raise RuntimeError("could not draw a tie-free weight")


def _quantize_case(w: np.ndarray, bits: int, dtype: str = "float32") -> dict:
    codes, scales = quantize_per_channel(w, bits)
    return {
        "inputs": {"weight": tensor(w, dtype), "bits": bits},
        "expected": {"codes": floats(codes), "scales": floats(scales)},
        "wrong": {key: {"codes": floats(c), "scales": floats(s)} for key, (c, s) in quantize_mistakes(w, bits).items()},
    }


def _quantize_cases(rng) -> list[dict]:
    return [
        # first: every catalogued mistake differs here, k < 8 (the unsigned range fits in int8),
        # rows of very different sizes, one zero row and one all-negative row
        _quantize_case(tie_free(rng, (4, 6), scale=1.5, row_scales=[1.0, 0.2, 3.0, 1.0], zero_rows=[3],
                                negative_rows=[1], bits=4), 4),
        _quantize_case(tie_free(rng, (5, 5), scale=1.2, row_scales=[2.0, 0.05, 1.0, 8.0, 0.5], negative_rows=[2],
                                bits=6), 6),
        _quantize_case(tie_free(rng, (1, 7), scale=2.0, bits=2), 2),
        _quantize_case(tie_free(rng, (7, 1), scale=1.0, zero_rows=[4], bits=3), 3),
        _quantize_case(tie_free(rng, (3, 9), scale=0.8, negative_rows=[0], bits=5), 5),
        _quantize_case(tie_free(rng, (6, 4), scale=2.5, bits=7), 7, dtype="float64"),
        _quantize_case(tie_free(rng, (8, 12), scale=0.05, row_scales=np.geomspace(0.1, 10, 8), bits=8), 8),
    ]


def _dequantize_case(codes: np.ndarray, scales: np.ndarray) -> dict:
    codes = np.asarray(codes, dtype=np.int64)
    scales = np.asarray(scales, dtype=np.float32).astype(np.float64)
    unsigned = np.where(codes < 0, codes + 256, codes)
    wrong = {
        "divides_by_scale": codes / scales[:, None],
        "rounds_result": np.rint(codes * scales[:, None]),
        "codes_read_unsigned": unsigned * scales[:, None],
        "one_scale_for_all": codes * scales[0],
    }
    if codes.shape[0] == codes.shape[1]:
        wrong["scales_along_columns"] = codes * scales[None, :]
    return {
        "inputs": {"codes": tensor(codes, "int8"), "scales": tensor(scales, "float32")},
        "expected": {"weight": floats(dequantize_per_channel(codes, scales))},
        "wrong": {key: {"weight": floats(value)} for key, value in wrong.items()},
    }


def _dequantize_cases(rng) -> list[dict]:
    def draw(shape, bits, low=0.01, high=0.5):
        q = qmax(bits)
        return rng.integers(-q, q + 1, size=shape), rng.uniform(low, high, size=shape[0])

    square_codes, square_scales = draw((5, 5), 8, 0.002, 0.05)
    square_codes[0, :2] = [-127, 127]
    return [
        _dequantize_case(square_codes, square_scales),
        _dequantize_case(*draw((3, 4), 4, 0.1, 2.0)),
        _dequantize_case(*draw((1, 6), 2, 0.3, 3.0)),
        _dequantize_case(*draw((6, 1), 5)),
        _dequantize_case(np.vstack([draw((1, 7), 3)[0], np.zeros((1, 7), int), draw((1, 7), 3)[0]]),
                         np.array([0.7, 1.0, 0.013])),
    ]


# --- low-rank factors ---------------------------------------------------------------------------------


def check_rank(rank, shape) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(shape):
        raise ValueError(f"rank must be an integer in [1, {min(shape)}] for a {shape[0]} x {shape[1]} matrix, got {rank!r}")
    return rank


def svd(w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.linalg.svd(np.asarray(w, dtype=np.float64), full_matrices=False)


def low_rank_factors(w, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """``(U_r, V_r)``: U[:, :r] sqrt(S_r) (out x r) and sqrt(S_r) Vt[:r] (r x in); the oracle's answer."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weight must be a matrix (out x in), got shape {w.shape}")
    rank = check_rank(rank, w.shape)
    u, s, vt = svd(w)
    root = np.sqrt(s[:rank])
    return u[:, :rank] * root, root[:, None] * vt[:rank]


def best_rank_r(w, rank: int) -> np.ndarray:
    u, s, vt = svd(w)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def factor_mistakes(w, rank: int) -> dict[str, np.ndarray]:
    """``{mistake: A @ B}`` for the sign-free catalogued mistakes (the products do not depend on the SVD's
    signs); the transposed and r+1 mistakes show in the shapes."""
    u, s, vt = svd(w)
    r = rank
    return {
        "sigma_missing": u[:, :r] @ vt[:r],
        "sigma_not_rooted": (u[:, :r] * s[:r] ** 2) @ vt[:r],
        "smallest_singular_values": (u[:, -r:] * s[-r:]) @ vt[-r:],
        "transposed": best_rank_r(w, r).T,
    }


def spectrum_matrix(rng, shape, singular_values) -> np.ndarray:
    """A float32 matrix W = U diag(s) V^T with the given distinct singular values (random orthonormal U, V)."""
    m, n = shape
    k = min(m, n)
    u, _ = np.linalg.qr(rng.normal(size=(m, k)))
    v, _ = np.linalg.qr(rng.normal(size=(n, k)))
    values = np.zeros(k)
    values[: len(singular_values)] = singular_values
    return ((u * values) @ v.T).astype(np.float32)


def _factors_case(w: np.ndarray, rank: int, dtype: str = "float32") -> dict:
    w64 = np.asarray(w, dtype=np.float64)
    _, s, _ = svd(w64)
    return {
        "inputs": {"weight": tensor(w64, dtype), "rank": rank},
        "expected": {"product": floats(best_rank_r(w64, rank)), "sigma": floats(s[:rank]), "dtype": dtype},
        "wrong": {key: {"product": floats(p)} for key, p in factor_mistakes(w64, rank).items()},
    }


def _factors_cases(rng) -> list[dict]:
    return [
        _factors_case(spectrum_matrix(rng, (6, 4), [4.0, 2.5, 1.2, 0.4]), 2),
        _factors_case(spectrum_matrix(rng, (5, 5), [3.0, 2.0, 1.5, 0.8, 0.3]), 3),
        _factors_case(spectrum_matrix(rng, (4, 7), [2.0, 1.1, 0.6, 0.2]), 1),
        _factors_case(spectrum_matrix(rng, (3, 8), [1.5, 0.9, 0.35]), 3),  # full rank: A @ B is W itself
        _factors_case(spectrum_matrix(rng, (7, 5), [5.0, 1.0, 0.5, 0.1, 0.05]), 2, dtype="float64"),
        _factors_case(spectrum_matrix(rng, (6, 5), [2.0, 1.0]), 3),  # rank above the matrix's own rank (2)
    ]


# --- factorize_linear ---------------------------------------------------------------------------------


def low_rank_parameter_count(in_features: int, out_features: int, rank: int, bias: bool = True) -> int:
    """r (in + out) for V_r and U_r, + out for the bias when there is one."""
    return rank * (in_features + out_features) + (out_features if bias else 0)


def _factorize_case(rng, shape, rank: int, *, bias: bool, values) -> dict:
    out_features, in_features = shape
    w = spectrum_matrix(rng, shape, values)
    b = rng.normal(size=out_features).astype(np.float32) if bias else None
    x = rng.normal(size=(5, in_features)).astype(np.float32)
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    b64 = np.zeros(out_features) if b is None else b.astype(np.float64)
    expected = x64 @ best_rank_r(w64, rank).T + b64
    parameters = low_rank_parameter_count(in_features, out_features, rank, bias)
    wrong = {
        "bias_dropped": {"output": floats(x64 @ best_rank_r(w64, rank).T)},
        "rank_ignored": {"output": floats(x64 @ w64.T + b64)},
        "first_layer_has_bias": {"parameters": parameters + rank},
        "single_dense_layer": {"parameters": in_features * out_features + (out_features if bias else 0)},
    }
    if out_features == in_features:
        wrong["factors_transposed"] = {"output": floats(x64 @ best_rank_r(w64, rank) + b64)}
    return {
        "inputs": {"weight": tensor(w), "bias": None if b is None else tensor(b), "rank": rank, "x": tensor(x),
                   "stand_ins": FACTORIZE_STAND_INS},
        "expected": {"output": floats(expected), "parameters": parameters, "bias": floats(b64)},
        "wrong": wrong,
    }


def _factorize_cases(rng) -> list[dict]:
    return [
        # first: square, so that factors copied transposed still run (and show as W_r^T x + b)
        _factorize_case(rng, (5, 5), 2, bias=True, values=[2.5, 1.5, 1.0, 0.6, 0.2]),
        _factorize_case(rng, (6, 4), 2, bias=True, values=[3.0, 2.0, 1.0, 0.5]),
        _factorize_case(rng, (3, 8), 1, bias=False, values=[2.0, 1.0, 0.4]),
        _factorize_case(rng, (4, 4), 4, bias=True, values=[1.8, 1.2, 0.7, 0.3]),  # full rank
    ]


# --- counts -------------------------------------------------------------------------------------------


def parameter_mistakes(in_features: int, out_features: int, rank: int, bias: bool) -> dict[str, int]:
    b = out_features if bias else 0
    return {
        "rank_plus_one": (rank + 1) * (in_features + out_features) + b,
        "bias_forgotten": rank * (in_features + out_features),
        "first_layer_bias": rank * (in_features + out_features) + b + (rank if bias else 0),
        "dense_count": in_features * out_features + b,
        "product_of_sizes": rank * in_features * out_features + b,
        "bias_flag_ignored": rank * (in_features + out_features) + out_features,
        "bias_of_input_size": rank * (in_features + out_features) + (in_features if bias else 0),
    }


def _parameter_case(in_features: int, out_features: int, rank: int, bias: bool) -> dict:
    expected = low_rank_parameter_count(in_features, out_features, rank, bias)
    wrong = {key: {"value": value} for key, value in parameter_mistakes(in_features, out_features, rank, bias).items()}
    return {"inputs": {"in_features": in_features, "out_features": out_features, "rank": rank, "bias": bias},
            "expected": {"value": expected}, "wrong": wrong}


def _parameter_cases() -> list[dict]:
    return [
        _parameter_case(7, 5, 3, True),  # every catalogued mistake gives a different number here
        _parameter_case(6, 5, 2, False),
        _parameter_case(1536, 384, 64, True),  # a MiniLM FFN matrix at rank 64
        _parameter_case(384, 384, 1, True),  # rank 1
        _parameter_case(9, 4, 4, False),  # full rank, no bias
        _parameter_case(1, 3, 1, True),  # a layer with one input
    ]


def stored_bytes(numel: int, bits: int, scales: int = 0) -> int:
    """ceil(numel * bits / 8) bytes of packed values + 4 bytes per float32 scale."""
    return math.ceil(numel * bits / 8) + SCALE_BYTES * scales


def byte_mistakes(numel: int, bits: int, scales: int) -> dict[str, int]:
    return {
        "bits_not_bytes": numel * bits + 32 * scales,
        "scales_forgotten": math.ceil(numel * bits / 8),
        "parameters_not_bytes": numel + scales,
        "floor_division": numel * bits // 8 + SCALE_BYTES * scales,
        "scales_at_k_bits": math.ceil((numel + scales) * bits / 8),
        "one_byte_per_code": numel * math.ceil(bits / 8) + SCALE_BYTES * scales,
        "scales_as_float64": math.ceil(numel * bits / 8) + 8 * scales,
    }


def _bytes_case(numel: int, bits: int, scales: int | None = None) -> dict:
    given = 0 if scales is None else scales
    inputs = {"numel": numel, "bits": bits} | ({} if scales is None else {"scales": scales})
    return {"inputs": inputs, "expected": {"value": stored_bytes(numel, bits, given)},
            "wrong": {key: {"value": value} for key, value in byte_mistakes(numel, bits, given).items()}}


def _bytes_cases() -> list[dict]:
    return [
        _bytes_case(35, 5, 7),  # every catalogued mistake gives a different number here
        _bytes_case(24, 4, 0),
        _bytes_case(10, 3),  # scales left to their default
        _bytes_case(12, 32),  # float32
        _bytes_case(7, 16, 0),  # float16 / bfloat16
        _bytes_case(9, 2, 3),
        _bytes_case(147_456, 4, 384),  # a MiniLM attention matrix at 4 bits, one scale per row
        _bytes_case(13, 7, 1),
        _bytes_case(0, 8, 0),  # nothing stored
    ]


def record() -> dict:
    rng = np.random.default_rng(4)
    return {
        "note": NOTE,
        "tests": {
            "test_quantize_per_channel": {"cases": _quantize_cases(rng)},
            "test_dequantize_per_channel": {"cases": _dequantize_cases(rng)},
            "test_low_rank_factors": {"cases": _factors_cases(rng)},
            "test_factorize_linear": {"cases": _factorize_cases(rng)},
            "test_low_rank_parameter_count": {"cases": _parameter_cases()},
            "test_stored_bytes": {"cases": _bytes_cases()},
        },
    }
