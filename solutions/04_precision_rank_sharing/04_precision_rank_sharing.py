# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Compressing by precision, rank and sharing
#
# *Model compression for NLP, part 4.* The lecture lists five ways to compress a model:
#
# 1. **distillation**: train a small student on the outputs of a large teacher (notebooks 01 and 02);
# 2. **pruning**: remove weights, heads or layers by an importance criterion (notebook 03);
# 3. **reduced precision** of the weights: FP16, int8, fewer bits still;
# 4. **low-rank factorisation** of the weight matrices;
# 5. **weight sharing**, as in ALBERT.
#
# This notebook covers the last three and puts all of them on one scale: the **bytes** a model takes as
# stored, against its **accuracy**, with its multiply-adds and its measured latency beside them. You
# write the pieces that decide those numbers, each checked as you go:
#
# 1. symmetric per-output-channel k-bit quantisation (2 points) and dequantisation (1 point),
# 2. the rank-r factors of a weight matrix from its SVD (2 points), a linear layer replaced by its two
#    factors (2 points), and the parameters that saves (1 point),
# 3. the bytes a tensor takes at k bits with its scales, the number the cost ledger is made of (2 points),
#
# and then you fill the ledger for a small model and read its frontier plot. The lecture ends on
# **"train large, then compress"** (Li et al., 2020, *Train Large, Then Compress*, arXiv 2002.11794): they
# quantised and pruned RoBERTa models of several sizes and found that the larger models lose less to
# compression, so that at the same size in bytes a compressed large model beats a small one trained
# to that size. The ledger at the end asks the same question of the kit's model.
#
# **How this works.** Replace each `raise NotImplementedError()` with your code. The cell after each
# function runs the *visible* tests; the grader also runs hidden tests there (other shapes, every k from
# 2 to 8, rows of zeros, rank 1 and full rank, ...), whose failure messages name the likely mistake. Run
# `nbgrader validate` before you submit. The experiments after the graded cells take a few minutes
# on a laptop CPU (`COMPRESSLIB_PROFILE=quick` shrinks them to seconds); grading skips them (they are
# tagged `grader-skip`).

# %%
import math

import torch
import torch.nn as nn

from compresslib.lowrank import LowRankLinear
from compresslib.profiles import notebook_profile

torch.manual_seed(0)
PROFILE = notebook_profile()  # quick | cpu | gpu ("quick": CI's setting, seconds)

# %% [markdown]
# ## 1 · Reduced precision: k-bit codes and one scale per row
#
# A float32 weight takes 4 bytes; float16 and bfloat16 take 2; an integer code of k bits takes k/8.
# Uniform quantisation stores each weight $w$ as an integer code $q$ and reads it back as $\hat w = s\,q$,
# with a real **scale** $s$ per group of weights. With k bits and a grid symmetric around zero, the codes
# run from $-q_{max}$ to $q_{max}$, $q_{max} = 2^{k-1} - 1$ (at k = 8: -127..127; at k = 2: -1, 0, 1).
# The most negative code, $-2^{k-1}$, is left out so that $w$ and $-w$ get opposite codes.
#
# **Per output channel**, each row $c$ of a weight $W$ (out x in) gets its own scale, so that a row of
# small weights is not rounded on the coarse grid of the largest row:
#
# $$s_c = \frac{\max_j |w_{cj}|}{q_{max}}, \qquad q_{cj} = \mathrm{clamp}\big(\mathrm{round}(w_{cj} / s_c),\, -q_{max},\, q_{max}\big), \qquad \hat w_{cj} = s_c\, q_{cj}.$$
#
# The largest $|w|$ of each row lands exactly on $\pm q_{max}$, and every weight is read back within half a
# step: $|w_{cj} - \hat w_{cj}| \le s_c / 2$. Divide first, then round (`torch.round`). A row of zeros has
# $\max |w| = 0$: give it scale 1 (its codes are then 0) rather than dividing by zero. Return the codes as
# `torch.int8` (k ≤ 8 bits fit in a byte) and the scales as a float tensor of shape (out,); leave the
# weight as it is (no in-place operations on it).

# %% nbgrader={"grade": false, "grade_id": "quantize_per_channel", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_per_channel(weight, bits):
    """Symmetric per-output-channel quantisation of `weight` (out x in) to `bits`-bit codes: returns
    (codes: int8, the weight's shape; scales: float, shape (out,)) with s_c = max_j |w_cj| / (2^(bits-1) - 1)
    (1 for a row of zeros) and q = clamp(round(w / s), -(2^(bits-1) - 1), 2^(bits-1) - 1)."""
    ### BEGIN SOLUTION
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().float()
    scales = w.abs().amax(dim=1) / qmax
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.clamp(torch.round(w / scales[:, None]), -qmax, qmax)
    return codes.to(torch.int8), scales
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_quantize_per_channel", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("04_precision_rank_sharing", "test_quantize_per_channel", globals())
### END HIDDEN TESTS
w = torch.tensor([[0.6, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 0.9, -0.5]])
codes, scales = quantize_per_channel(w, 4)
assert codes.dtype == torch.int8 and codes.shape == w.shape, "codes: int8, the weight's shape"
assert scales.shape == (3,), "one scale per output row"
assert torch.allclose(scales, torch.tensor([1 / 7, 1.0, 2 / 7])), "s_c = max_j |w_cj| / 7 at 4 bits (scale 1 for zeros)"
assert codes.tolist() == [[4, -7, 2], [0, 0, 0], [7, 3, -2]], "q = round(w / s), clamped to [-7, 7]"
assert torch.equal(w, torch.tensor([[0.6, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 0.9, -0.5]])), "leave the weight as it is"
print("visible tests passed")

# %% [markdown]
# Reading the weights back is one line, and worth its own function: the codes and the scales are what a
# quantised model stores, and what it multiplies at run time.

# %% nbgrader={"grade": false, "grade_id": "dequantize_per_channel", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dequantize_per_channel(codes, scales):
    """The float32 weight read back from per-channel codes (out x in) and scales (out,): w_cj = s_c q_cj."""
    ### BEGIN SOLUTION
    return codes.float() * scales.float()[:, None]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_dequantize_per_channel", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("04_precision_rank_sharing", "test_dequantize_per_channel", globals())
### END HIDDEN TESTS
back = dequantize_per_channel(torch.tensor([[4, -7, 2], [0, 0, 0]], dtype=torch.int8), torch.tensor([0.5, 1.0]))
assert back.dtype == torch.float32 and back.tolist() == [[2.0, -3.5, 1.0], [0.0, 0.0, 0.0]], "w = s_c * q_cj, row by row"
w = torch.randn(16, 40)
for bits in range(2, 9):
    codes, scales = quantize_per_channel(w, bits)
    error = (w - dequantize_per_channel(codes, scales)).abs()
    assert torch.all(error <= scales[:, None] / 2 + 1e-6), f"{bits} bits: every weight within half a step, s_c / 2"
print("visible tests passed")

# %% [markdown]
# Each extra bit halves the step, so the rounding error halves too. On a real weight matrix, the first
# feed-forward matrix of the pre-trained MiniLM this kit uses (384 x 1536 in its transformers layout:
# 1536 rows of 384), your functions give:

# %% tags=["grader-skip"]
from compresslib.models import load_classifier, load_tokenizer

teacher = load_classifier().eval()  # the pre-trained all-MiniLM-L6-v2 encoder (its classifier head is new)
ffn = teacher.bert.encoder.layer[0].intermediate.dense.weight.detach()
print(f"{'bits':>4}  {'mean |w - w_hat| / mean |w|':>28}  {'max |w - w_hat| / (s/2)':>24}")
for bits in range(8, 1, -1):
    codes, scales = quantize_per_channel(ffn, bits)
    error = (ffn - dequantize_per_channel(codes, scales)).abs()
    print(f"{bits:>4}  {float(error.mean() / ffn.abs().mean()):>28.4f}  {float((error / (scales[:, None] / 2)).max()):>24.3f}")

# %% [markdown]
# ## 2 · Fewer bytes, and sometimes less time
#
# Bytes are one saving; time is another, and it depends on the hardware. A matrix product in int8 runs
# on integer instructions that pack four times as many values per register as float32 (fbgemm's kernels
# on x86, qnnpack's on ARM). PyTorch's **dynamic int8 quantisation** (`torch.ao.quantization.quantize_dynamic`,
# wrapped as `compresslib.quantize.dynamic_int8`) stores the linear layers' weights in int8 per output
# channel, as you just did at k = 8, and quantises the activations batch by batch at run time, so that
# the products themselves run in int8. **bfloat16** halves the bytes too, but a CPU without bfloat16
# matrix instructions (AVX-512 BF16 or AMX on x86) has no fast path for it: it converts and computes
# more slowly than in float32. Here is the pre-trained MiniLM on one batch of real snippets, the three
# versions timed interleaved (A, B, C, A, B, C, ...; best round), on this machine's CPU:

# %% tags=["grader-skip"]
from pathlib import Path

from compresslib.data import read_polarity_snippets
from compresslib.ledger import compare_latency
from compresslib.quantize import cast, dynamic_int8

flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
print("CPU:", torch.backends.cpu.get_cpu_capability(), "| bfloat16 matrix instructions:",
      [f for f in ("avx512_bf16", "amx_bf16") if f in flags] or "none", "| int8 dot products:",
      [f for f in ("avx_vnni", "avx512_vnni") if f in flags] or "none beyond AVX2", "| threads:", torch.get_num_threads())
tokenizer = load_tokenizer()
batch_size, length = 8, 32  # bfloat16 is slow here: one small batch shows it
texts = [text for text, _ in read_polarity_snippets()[:batch_size]]
batch = dict(tokenizer(texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt"))
versions = {"float32": teacher, "int8 (dynamic)": dynamic_int8(teacher), "bfloat16": cast(teacher, torch.bfloat16)}
timings = compare_latency(versions, batch, rounds=2, repeats=1)
for name, (seconds, speedup) in timings.items():
    print(f"{name:>15}: {1e3 * seconds:7.1f} ms per batch of {batch_size} x {length} tokens, {speedup:4.2f}x float32's speed")

# %% [markdown]
# ## 3 · Low-rank factorisation
#
# A weight $W$ (out x in) has the singular value decomposition $W = U \Sigma V^\top$,
# $\sigma_1 \ge \sigma_2 \ge \dots \ge 0$. Keeping the $r$ largest singular values gives
# $W_r = U_{:, :r} \Sigma_r V_{:, :r}^\top$, the **best** rank-r approximation of $W$ (Eckart-Young:
# $\|W - W_r\|_F^2 = \sum_{i > r} \sigma_i^2$, and no rank-r matrix does better). Split it into two
# factors, the square root of $\Sigma_r$ on each side so that neither carries all the scale when both
# are fine-tuned:
#
# $$U_r = U_{:, :r}\, \Sigma_r^{1/2} \quad (\text{out} \times r), \qquad V_r = \Sigma_r^{1/2}\, V_{:, :r}^\top \quad (r \times \text{in}), \qquad U_r V_r = W_r.$$
#
# `torch.linalg.svd(W, full_matrices=False)` returns `U`, `S` (decreasing) and `Vh` $= V^\top$. Compute in
# float64 if you like, and return both factors in the weight's dtype. (The factors are unique only up to
# the sign of each singular pair; the tests check what does not depend on it.)

# %% nbgrader={"grade": false, "grade_id": "low_rank_factors", "locked": false, "schema_version": 3, "solution": true, "task": false}
def low_rank_factors(weight, rank):
    """(U_r, V_r): U_r = U[:, :r] sqrt(S_r) (out x r) and V_r = sqrt(S_r) Vh[:r] (r x in), in the weight's
    dtype, so that U_r @ V_r is the best rank-r approximation of `weight` (out x in)."""
    ### BEGIN SOLUTION
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(weight.dtype), (root[:, None] * vh[:rank]).to(weight.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_low_rank_factors", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("04_precision_rank_sharing", "test_low_rank_factors", globals())
### END HIDDEN TESTS
w = torch.randn(7, 5)
u_r, v_r = low_rank_factors(w, 2)
assert u_r.shape == (7, 2) and v_r.shape == (2, 5), "U_r is (out x r), V_r is (r x in)"
assert u_r.dtype == w.dtype and v_r.dtype == w.dtype, "return the factors in the weight's dtype"
s = torch.linalg.svdvals(w)
assert torch.allclose((w - u_r @ v_r).norm() ** 2, (s[2:] ** 2).sum(), rtol=1e-4), "|W - W_r|^2 = sum of dropped sigma^2"
assert torch.allclose(u_r.T @ u_r, torch.diag(s[:2]), atol=1e-4), "sqrt(S_r) on each side: U_r^T U_r = S_r"
assert torch.allclose(low_rank_factors(w, 5)[0] @ low_rank_factors(w, 5)[1], w, atol=1e-5), "full rank gives W back"
print("visible tests passed")

# %% [markdown]
# A linear layer $y = W x + b$ becomes two: first $V_r$ (in → r, no bias), then $U_r$ (r → out, with the
# original bias): $y = U_r (V_r x) + b$. Write `factorize_linear(linear, rank)` with your
# `low_rank_factors`. `LowRankLinear(in_features, out_features, rank, bias=...)` (imported above) is such
# a pair: its `v` and `u` are `nn.Linear` layers, and an `nn.Linear(n_in, n_out)` keeps its weight as an
# (n_out x n_in) matrix, so `v.weight` is $V_r$ and `u.weight` is $U_r$. Copy the factors and the bias in
# under `torch.no_grad()`; leave the original layer as it is.

# %% nbgrader={"grade": false, "grade_id": "factorize_linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
def factorize_linear(linear, rank):
    """A new module computing U_r (V_r x) + b for the rank-r factors of `linear`'s weight: V_r (in -> r, no
    bias) then U_r (r -> out, with `linear`'s bias when it has one)."""
    ### BEGIN SOLUTION
    u_r, v_r = low_rank_factors(linear.weight.detach(), rank)
    layer = LowRankLinear(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
    with torch.no_grad():
        layer.v.weight.copy_(v_r)
        layer.u.weight.copy_(u_r)
        if linear.bias is not None:
            layer.u.bias.copy_(linear.bias)
    return layer
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_factorize_linear", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("04_precision_rank_sharing", "test_factorize_linear", globals())
### END HIDDEN TESTS
dense = nn.Linear(6, 4)
x = torch.randn(3, 6)
low = factorize_linear(dense, 2)
u_r, v_r = low_rank_factors(dense.weight.detach(), 2)
assert torch.allclose(low(x), x @ (u_r @ v_r).T + dense.bias, atol=1e-5), "y = U_r (V_r x) + b"
assert sum(p.numel() for p in low.parameters()) == 2 * (6 + 4) + 4, "two factors and one bias"
assert torch.allclose(factorize_linear(dense, 4)(x), dense(x), atol=1e-5), "at full rank, the same layer"
print("visible tests passed")

# %% [markdown]
# What does that save? $V_r$ holds $r \cdot in$ values and $U_r$ holds $out \cdot r$, plus the bias
# ($out$ values) when the layer has one; the dense layer holds $in \cdot out$ (+ $out$). The factorised
# layer is smaller only while $r (in + out) < in \cdot out$: up to the **break-even rank**
# $\lceil in \cdot out / (in + out) \rceil - 1$, which is 307 for MiniLM's 384 x 1536 feed-forward matrices
# and 191 for its 384 x 384 attention projections. (The multiply-adds per token follow the same count.)

# %% nbgrader={"grade": false, "grade_id": "low_rank_parameter_count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def low_rank_parameter_count(in_features, out_features, rank, bias=True):
    """Parameters of the rank-r factorisation of an (out x in) linear layer: r (in + out), + out for the bias."""
    ### BEGIN SOLUTION
    return rank * (in_features + out_features) + (out_features if bias else 0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_low_rank_parameter_count", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("04_precision_rank_sharing", "test_low_rank_parameter_count", globals())
### END HIDDEN TESTS
assert low_rank_parameter_count(6, 4, 2) == sum(p.numel() for p in factorize_linear(nn.Linear(6, 4), 2).parameters())
assert low_rank_parameter_count(6, 4, 2, bias=False) == 20, "no bias: only the two factors"
assert low_rank_parameter_count(384, 1536, 307, bias=False) < 384 * 1536 < low_rank_parameter_count(384, 1536, 308, bias=False)
print("visible tests passed")

# %% [markdown]
# ### Why BERT's feed-forward matrices compress less well than their size suggests
#
# A rank-r factorisation keeps the share $\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2$ of a matrix's
# squared singular values ("energy"). A matrix that is nearly low-rank concentrates it in a few
# directions; a pre-trained transformer's weight matrices do not. Below: the singular values of two of
# MiniLM's feed-forward matrices and an attention projection, against a random Gaussian matrix of the
# feed-forward shape (whose singular values decay slowly: no direction matters more than another) and a
# matrix of rank 32 plus a little noise. The dashed lines are the break-even ranks.

# %% tags=["grader-skip"]
from compresslib.lowrank import FFN_PATTERN, break_even_rank, rank_for_energy, singular_value_spectra
from compresslib.plots import plot_singular_values

spectra = singular_value_spectra(teacher, FFN_PATTERN)
query = singular_value_spectra(teacher, r"encoder\.layer\.0\.attention\.self\.query$")
generator = torch.Generator().manual_seed(0)
random_matrix = torch.randn(1536, 384, generator=generator)
low_rank_matrix = torch.randn(1536, 32, generator=generator) @ torch.randn(32, 384, generator=generator) / 4 \
    + 0.05 * torch.randn(1536, 384, generator=generator)
shown = {
    "FFN in, layer 0 (1536 x 384)": spectra["bert.encoder.layer.0.intermediate.dense"],
    "FFN out, layer 5 (384 x 1536)": spectra["bert.encoder.layer.5.output.dense"],
    "attention query, layer 0 (384 x 384)": query["bert.encoder.layer.0.attention.self.query"],
    "random Gaussian (1536 x 384)": torch.linalg.svdvals(random_matrix.double()),
    "rank 32 + noise (1536 x 384)": torch.linalg.svdvals(low_rank_matrix.double()),
}
square = "attention query, layer 0 (384 x 384)"
break_even = {label: break_even_rank(384, 384 if label == square else 1536) for label in shown}
plot_singular_values({k: v.tolist() for k, v in shown.items()}, break_even=break_even,
                     title="How fast the singular values decay");
print(f"{'matrix':>38}  {'rank for 50%':>12}  {'for 90%':>8}  {'for 99%':>8}  {'break-even':>10}")
for label, values in shown.items():
    ranks = [rank_for_energy(values, e) for e in (0.5, 0.9, 0.99)]
    print(f"{label:>38}  {ranks[0]:>12}  {ranks[1]:>8}  {ranks[2]:>8}  {break_even[label]:>10}")

# %% [markdown]
# The feed-forward matrices need a large share of their 384 ranks to keep most of their energy: their
# spectra look more like the random matrix's than like the low-rank one's. A 384 x 1536 matrix has 589,824
# parameters, which suggests plenty of room, but a factorisation only saves anything below rank 307, and
# keeping 90% of the energy takes a rank not far below that, so the saving at that fidelity is small.
# Energy is only a proxy for accuracy (fine-tuning after factorising recovers some of what is lost);
# the ledger below measures the accuracy itself.

# %% [markdown]
# ## 4 · Counting bytes
#
# Parameters count values; what a model costs to store, ship and hold in memory is **bytes**. A tensor
# of `numel` values stored at `bits` bits each, **packed** (codes laid end to end, as
# `compresslib.quantize.QuantizedLinear` stores them), takes $\lceil numel \cdot bits / 8 \rceil$ bytes: the
# last byte may be partly used, and it is still stored. Quantised weights also need their **scales**,
# float32 numbers of 4 bytes each, one per output row here. So a 1536 x 384 matrix at 4 bits takes
# $\lceil 589{,}824 \cdot 4 / 8 \rceil + 4 \cdot 1536 = 301{,}056$ bytes against 2,359,296 in float32:
# 7.8 times smaller, not 8. Write `stored_bytes(numel, bits, scales=0)`, returning an int. The ledger
# counts every model's bytes with it.

# %% nbgrader={"grade": false, "grade_id": "stored_bytes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stored_bytes(numel, bits, scales=0):
    """Bytes of `numel` values stored at `bits` bits each, packed, plus `scales` float32 scales (4 bytes
    each): ceil(numel * bits / 8) + 4 * scales."""
    ### BEGIN SOLUTION
    return math.ceil(numel * bits / 8) + 4 * scales
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_stored_bytes", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
from compresslib.capture import capture; capture("04_precision_rank_sharing", "test_stored_bytes", globals())
### END HIDDEN TESTS
assert stored_bytes(1536 * 384, 4, 1536) == 301_056, "packed 4-bit codes plus one float32 scale per row"
assert stored_bytes(10, 32) == 40, "float32: 4 bytes a value; no scales by default"
assert stored_bytes(3, 3) == 2, "9 bits need 2 bytes: round up"
assert isinstance(stored_bytes(5, 8, 1), int), "a number of bytes is an int"
print("visible tests passed")

# %% [markdown]
# The ledger needs a model's bytes, so here is how the notebook counts them with your `stored_bytes`:
# every tensor the model stores (each shared tensor once: `compresslib.ledger.stored_tensors`), at its own
# precision (32 bits for float32, 16 for bfloat16, 8 for PyTorch's int8 layers, plus the float64 scale and
# int64 zero point PyTorch keeps for each of their rows), except the weights of the linear layers you
# quantise to k bits, counted as packed k-bit codes with one float32 scale per row.

# %% tags=["grader-skip"]
from compresslib.architecture import linear_names
from compresslib.ledger import stored_tensors


def bytes_as_stored(model, weight_bits=None, pattern=None):
    """Bytes of `model` as stored, counted with your stored_bytes: the weights of the linear layers matching
    `pattern` (None: all of them) at `weight_bits` bits with a float32 scale per row, everything else at
    its own precision (with the scales and zero points its quantised layers keep)."""
    k_bit = {f"{name}.weight" for name in linear_names(model, pattern)} if weight_bits else set()
    total = 0
    for tensor in stored_tensors(model):
        if tensor.name in k_bit:
            total += stored_bytes(tensor.numel, weight_bits, tensor.shape[0])
        else:
            total += stored_bytes(tensor.numel, tensor.bits) + tensor.overhead_bytes
    return total


print(f"the pre-trained MiniLM classifier: {bytes_as_stored(teacher) / 1e6:.2f} MB in float32, "
      f"{bytes_as_stored(versions['int8 (dynamic)']) / 1e6:.2f} MB with PyTorch's int8 linear layers, "
      f"{bytes_as_stored(teacher, weight_bits=4) / 1e6:.2f} MB with 4-bit linear weights")

# %% [markdown]
# The int8 and 4-bit versions shrink far less than 4x and 8x: only the linear layers are quantised, and
# MiniLM's word-embedding table (30,522 x 384, 11.7M of its 22.7M parameters) is not a linear layer.
# ALBERT's **factorised embedding** attacks exactly that table: a V x E lookup followed by an E x H
# projection (`compresslib.share.factorize_word_embeddings`, with the same truncated SVD as your
# factors).
#
# ## 5 · Weight sharing
#
# ALBERT (Lan et al., 2020) goes further: **one** set of layer weights is used at every depth, the encoder
# applying the same layer L times. `compresslib.share.share_layers(model, groups=1)` builds such a model
# from a pre-trained one (the shared layer starts from the mean of the layers it replaces, then is
# fine-tuned). It divides the layers' parameters and bytes by L, but not the work: every position still
# runs a full layer, so the multiply-adds and the latency stay those of the unshared model. The ledger
# shows both.
#
# ## 6 · One cost ledger, one frontier
#
# Now every technique on one scale. Fine-tuning all of MiniLM several times would take too long on a
# laptop CPU, so, as in notebook 03, the model is the **top two** of MiniLM's six layers plus the
# classifier head, fine-tuned on Rotten Tomatoes snippets with the four layers below frozen (their
# outputs are computed once and cached: `compresslib.top_layers`). Its bytes are those of the top model,
# the part that is compressed. Each row of the ledger is one version of it:
#
# * **float32**: the fine-tuned model; **bfloat16** (a cast) and **int8** (PyTorch's dynamic int8): the same
#   weights at lower precision, no retraining;
# * **8, 4, 3 and 2 bits**: every linear weight quantised per channel with your functions (*fake*
#   quantisation: the weights are put on their k-bit grid and kept as floats to run them, so they are
#   timed at float32's speed; their bytes are counted as stored, packed);
# * **low rank**: both feed-forward matrices of each layer factorised with your `factorize_linear` at
#   several ranks, as they are, and at one rank fine-tuned once more after factorising;
# * **shared**: the two layers replaced by one shared layer (their mean), then fine-tuned;
# * **one layer**: a *smaller* model of the same family, the top layer alone, fine-tuned in the same way
#   (for "train large, then compress");
# * and combinations of them.
#
# Accuracy is on held-out snippets; latency on one batch of them, interleaved against float32.

# %% tags=["grader-skip"]
from compresslib.lowrank import factorize_linears
from compresslib.quantize import fake_quantize_linears
from compresslib.share import share_layers
from compresslib.stats import majority_class_accuracy
from compresslib.top_layers import TopLayersTask

if PROFILE == "quick":  # seconds
    settings = dict(train_examples=64, eval_examples=64, top_layers=2, max_length=16, batch_size=16, epochs=1, lr=1e-3)
    ranks, tuned_rank = [128, 32], 32
else:  # cpu, gpu (the top-layers task runs on the CPU); one epoch of 32 steps left the model at the majority class
    settings = dict(train_examples=512, eval_examples=384, top_layers=2, max_length=32, batch_size=16, epochs=2,
                    lr=3e-4)
    ranks, tuned_rank = [256, 128, 64], 128
task = TopLayersTask.build(**settings)
labels = [int(label) for batch in task.eval_batches for label in batch["labels"]]
majority = majority_class_accuracy(labels)
print(f"{len(task.train_batches)} training batches, {len(labels)} test snippets (majority class {100 * majority:.1f}%)")


def fine_tuned(model, desc):
    torch.manual_seed(0)
    task.train(model, desc=desc)
    return model.eval()


def your_fake_quantizer(weight, bits):  # your two functions, one after the other
    return dequantize_per_channel(*quantize_per_channel(weight, bits))


full = fine_tuned(task.theta0(), "fine-tuning float32")
print(f"float32, fine-tuned: {100 * task.accuracy(full):.1f}%")

# %% [markdown]
# The compressed versions that need no training, then the three that are fine-tuned (each a few
# seconds to a minute):

# %% tags=["grader-skip"]
models, storage = {"float32": full}, {}  # storage: name -> (weight_bits, pattern) for the k-bit rows
models["bfloat16"] = cast(full, torch.bfloat16)
models["int8 (dynamic)"] = dynamic_int8(full)
for bits in (8, 4, 3, 2):
    models[f"{bits}-bit"] = fake_quantize_linears(full, bits, quantizer=your_fake_quantizer)
    storage[f"{bits}-bit"] = (bits, None)
for rank in ranks:
    models[f"FFN rank {rank}"] = factorize_linears(full, rank=rank, pattern=FFN_PATTERN, factorizer=factorize_linear)

# %% tags=["grader-skip"]
models[f"FFN rank {tuned_rank}, fine-tuned"] = fine_tuned(
    factorize_linears(full, rank=tuned_rank, pattern=FFN_PATTERN, factorizer=factorize_linear),
    f"fine-tuning at FFN rank {tuned_rank}")
models[f"FFN rank {tuned_rank}, fine-tuned, 8-bit"] = fake_quantize_linears(
    models[f"FFN rank {tuned_rank}, fine-tuned"], 8, quantizer=your_fake_quantizer)
storage[f"FFN rank {tuned_rank}, fine-tuned, 8-bit"] = (8, None)

# %% tags=["grader-skip"]
models["shared"] = fine_tuned(share_layers(full, groups=1), "fine-tuning the shared layer")
models["shared, 8-bit"] = fake_quantize_linears(models["shared"], 8, quantizer=your_fake_quantizer)
storage["shared, 8-bit"] = (8, None)

# %% tags=["grader-skip"]
one_layer = task.theta0()
one_layer.bert.encoder.layer = one_layer.bert.encoder.layer[-1:]  # the top layer alone, at its pre-trained weights
models["one layer"] = fine_tuned(one_layer, "fine-tuning the one-layer model")
for bits in (8, 4):
    models[f"one layer, {bits}-bit"] = fake_quantize_linears(models["one layer"], bits, quantizer=your_fake_quantizer)
    storage[f"one layer, {bits}-bit"] = (bits, None)
accuracies = {name: task.accuracy(model) for name, model in models.items()}

# %% tags=["grader-skip"]
from IPython.display import Markdown, display

from compresslib.ledger import Ledger, ledger_row

timed = ["float32", "bfloat16", "int8 (dynamic)", f"FFN rank {ranks[-1]}", "shared", "one layer"]
probe = {k: v for k, v in task.eval_batches[0].items() if k != "labels"}
latency = compare_latency({name: models[name] for name in timed}, probe, rounds=5, repeats=3)
one_sequence = {"inputs_embeds": probe["inputs_embeds"][:1], "attention_mask": torch.ones_like(probe["attention_mask"][:1])}
notes = {name: "fake-quantised: float kernels, float32's speed" for name in storage}
ledger = Ledger(baseline="float32")
for name, model in models.items():
    bits, pattern = storage.get(name, (None, None))
    ledger.add(ledger_row(name, model, inputs=one_sequence, seq_len=one_sequence["inputs_embeds"].shape[1],
                          accuracy=accuracies[name], latency=latency.get(name), note=notes.get(name, ""),
                          count_bytes=lambda m, bits=bits, pattern=pattern: bytes_as_stored(m, bits, pattern)))
display(Markdown(ledger.to_markdown()))

# %% tags=["grader-skip"]
from compresslib.plots import plot_frontier

plot_frontier({row.name: (row.bytes, row.accuracy) for row in ledger.rows}, majority=majority, baseline="float32",
              title="Top two MiniLM layers: accuracy against bytes as stored");

# %% [markdown]
# ## 7 · Reading the frontier
#
# Each point is one version of the model; the grey line joins those that nothing smaller beats. Read
# the table and the plot for these questions (the cell below computes the first three from the ledger;
# the numbers move a little with the data subset and the seed, so read them with a point or two of
# noise in mind, and compare with the majority class, the floor any model reaches by guessing):
#
# 1. **Which technique wins at a given size?** Quantisation is the cheapest in accuracy per byte saved
#    down to 8 and usually 4 bits, with no retraining at all; at 2 bits the grid has three values and
#    the model usually falls towards the majority class.
# 2. **Which is actually faster?** Of the versions that do the same work, only PyTorch's int8 kernels
#    can be, on this CPU. bfloat16 halves the bytes and runs slower; fake quantisation, sharing and the
#    unstructured masks of notebook 03 save bytes (or nothing) and no time; low rank and the one-layer
#    model do fewer multiply-adds, and save time in proportion only where the matrices get much smaller.
#    Latency is measured on whatever else the machine is doing: on a busy machine a speed-up of a few
#    tenths for the shared model (the same multiply-adds as float32) is noise; rerun the cell to see it move.
# 3. **What does sharing save?** Parameters and bytes; its multiply-adds and latency are those of the
#    unshared model, since every position still runs a layer.
# 4. **Train large, then compress.** Compare the two-layer model quantised to 4 bits with the one-layer
#    model at 8 bits: about the same bytes. Li et al. found the larger model wins at equal size
#    (RoBERTa, quantised and pruned). Here the "small" model is only one layer smaller and both start
#    from pre-trained layers, so the test is a weak one; the reference run
#    (`python -m compresslib.runs compress`) compares the six-layer model with the distilled three-layer
#    student over seeds.

# %% tags=["grader-skip"]
rows = {row.name: row for row in ledger.rows}
base = rows["float32"]
within = [row for row in ledger.rows if row.accuracy >= base.accuracy - 0.01]
smallest = min(within, key=lambda row: row.bytes)
print(f"float32: {base.bytes / 1e6:.2f} MB, {100 * base.accuracy:.1f}% (majority class {100 * majority:.1f}%)")
print(f"smallest model within 1 point of float32: {smallest.name}, {smallest.bytes / 1e6:.2f} MB "
      f"({base.bytes / smallest.bytes:.1f}x smaller), {100 * smallest.accuracy:.1f}%")
fastest = max((row for row in ledger.rows if row.speedup is not None), key=lambda row: row.speedup)
print(f"fastest: {fastest.name}, {fastest.speedup:.2f}x float32's speed; bfloat16: {rows['bfloat16'].speedup:.2f}x")
shared = rows["shared"]
print(f"sharing: {base.parameters / shared.parameters:.2f}x fewer parameters, multiply-adds "
      f"{shared.multiply_adds / base.multiply_adds:.2f}x float32's, {shared.speedup:.2f}x float32's speed")
large, small = rows["4-bit"], rows["one layer, 8-bit"]
print(f"train large, then compress: two layers at 4 bits {large.bytes / 1e6:.2f} MB, {100 * large.accuracy:.1f}%; "
      f"one layer at 8 bits {small.bytes / 1e6:.2f} MB, {100 * small.accuracy:.1f}%")
