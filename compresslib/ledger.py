r"""One cost ledger for any model: parameters, non-zero parameters, bytes as stored (dense, and sparse
for a masked model), multiply-adds at a sequence length, latency against a baseline, accuracy.

**What is counted.** The model's *stored tensors* (:func:`stored_tensors`): its parameters, plus the
weights of quantised linear layers and embedding tables, which are buffers rather than parameters (the
kit's :class:`~compresslib.quantize.QuantizedLinear` and :class:`~compresslib.quantize.QuantizedEmbedding`,
PyTorch's dynamic int8 ``Linear``). Each tensor is
counted once however many modules use it (ALBERT-style sharing, tied weights: the same ``Parameter``
object). Buffers that are not weights (BERT's ``position_ids``) are not counted.

**Bytes as stored, dense** (:func:`model_bytes`): each tensor at its storage precision,
:math:`\lceil n \cdot \text{bits} / 8 \rceil` for n values (:func:`tensor_bytes`): 32 bits for float32,
16 for float16 / bfloat16, k for the kit's k-bit codes (packed, see
:mod:`compresslib.quantize.packing`) plus 4 bytes per float32 scale and 1 per uint8 zero point, 8 for
PyTorch's int8 weights plus their scales and zero points as PyTorch keeps them (float64 and int64,
8 bytes each, one pair per tensor or per output row).

**Bytes as stored, sparse** (:func:`sparse_bytes`), for a model pruned by a
:class:`compresslib.prune.Mask`: every tensor the mask names is stored in CSR format (compressed sparse
rows, rows = the first dimension) with **int32** column indices and row pointers, the kept values at
the tensor's precision: :math:`\lceil nnz \cdot \text{bits} / 8 \rceil + 4\,nnz + 4\,(rows + 1)`
(:func:`csr_bytes`; the layout of ``torch.sparse_csr_tensor`` with int32 indices); scales stay as they
are; tensors the mask does not name stay dense. The stored values are the *mask's* kept entries
(nnz = the mask's ones), not the exact zeros: a kept weight that happens to be 0 is still stored, and a
pruned weight that is not 0 is an error (the mask was not applied). CSR beats dense only above a
sparsity of 1/2 for float32 values (4 index bytes per 4 value bytes), 4/5 for int8 values.

**Non-zero parameters**: stored values that read back as exactly non-zero (for quantised weights,
codes other than the zero code), counted from the values, mask or not.

**Multiply-adds** (:func:`count_multiply_adds`), traced on one forward pass of a batch of one sequence
of ``seq_len`` tokens: a linear layer (dense, k-bit, int8) costs in x out per token it is applied to
(a low-rank layer is two linear layers: r (in + out)); a BERT-family self-attention module (one with
``num_attention_heads`` and ``attention_head_size``) costs :math:`2\,n^2 d` for
:math:`QK^\top` and the weighted sum of V, d = heads x head size. A layer applied L times (sharing)
costs L times. Lookups (embeddings), softmax, LayerNorm and element-wise ops are not counted. Masked
weights are counted dense: unstructured zeros run through dense kernels.

**Latency** (:func:`compare_latency`): seconds for one batch, best of interleaved rounds against the
other models on the same batch (:func:`compresslib.training.compare_inference_times`), on each
model's own device, and the speed-up against a baseline.

The ledger sits above the technique packages (it reads their layer types and masks); they never
import it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral
from pathlib import Path

import torch
from torch import nn

from compresslib.answers import reference_answer
from compresslib.prune.mask import Mask
from compresslib.quantize.modules import QuantizedEmbedding, QuantizedLinear
from compresslib.training import compare_inference_times

SPARSE_FORMAT = "CSR (compressed sparse rows), int32 column indices and row pointers, values at their precision"
INDEX_BYTES = 4


def _dynamic_linear_type():
    from torch.ao.nn.quantized.dynamic import Linear

    return Linear


# --- stored tensors ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredTensor:
    """One tensor as the model stores it: ``bits`` per value (32, 16, 8 or k), ``overhead_bytes`` for
    its scales and zero points, and which of its values read back as zero (``is_zero``, its shape)."""

    name: str
    shape: tuple[int, ...]
    bits: int
    overhead_bytes: int
    is_zero: torch.Tensor = field(repr=False, compare=False)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nonzero(self) -> int:
        return self.numel - int(self.is_zero.sum())

    @property
    def nbytes(self) -> int:
        return tensor_bytes(self.numel, self.bits) + self.overhead_bytes


def _torch_int8_entries(name: str, module) -> list[StoredTensor]:
    weight = module.weight()
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scales, zero_points = weight.q_per_channel_scales(), weight.q_per_channel_zero_points()
        overhead = scales.numel() * scales.element_size() + zero_points.numel() * zero_points.element_size()
        zero = weight.int_repr() == zero_points.reshape(-1, *([1] * (weight.dim() - 1)))
    else:
        overhead = 8 + 8  # one float64 scale and one int64 zero point per tensor, as PyTorch keeps them
        zero = weight.int_repr() == weight.q_zero_point()
    entries = [StoredTensor(f"{name}.weight", tuple(weight.shape), 8, overhead, zero)]
    bias = module.bias()
    if bias is not None:
        entries.append(StoredTensor(f"{name}.bias", tuple(bias.shape), bias.element_size() * 8, 0, bias.detach() == 0))
    return entries


def _quantized_entry(name: str, module: QuantizedLinear | QuantizedEmbedding) -> StoredTensor:
    quantized = module.quantized
    overhead = sum(t.numel() * t.element_size() for t in (quantized.scale, quantized.zero_point) if t is not None)
    return StoredTensor(f"{name}.weight", tuple(quantized.shape), quantized.bits, overhead, quantized.reads_zero())


def stored_tensors(model: nn.Module) -> list[StoredTensor]:
    """Every tensor ``model`` stores as weights, each once: quantised weights (the kit's k-bit linear
    layers and embedding tables, PyTorch's dynamic int8 layers, named ``<module>.weight`` like the float
    weight they replace) and the parameters (``named_parameters``, shared ones once)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    dynamic_linear = _dynamic_linear_type()
    entries: list[StoredTensor] = []
    for name, module in model.named_modules():
        if isinstance(module, (QuantizedLinear, QuantizedEmbedding)):
            entries.append(_quantized_entry(name, module))
        elif isinstance(module, dynamic_linear):
            entries.extend(_torch_int8_entries(name, module))
    for name, param in model.named_parameters():
        entries.append(StoredTensor(name, tuple(param.shape), param.element_size() * 8, 0, param.detach() == 0))
    return entries


# --- counts --------------------------------------------------------------------------------------

def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


@reference_answer("04_precision_rank_sharing")
def tensor_bytes(numel: int, bits: int) -> int:
    """Bytes of ``numel`` values stored ``bits`` bits each, packed: ``ceil(numel * bits / 8)``
    (float32: 4 bytes a value, float16 / bfloat16: 2, int8: 1, 4-bit: 1/2)."""
    numel = _check_count(numel, "numel")
    if isinstance(bits, bool) or not isinstance(bits, Integral) or not 1 <= bits <= 64:
        raise ValueError(f"bits must be an integer from 1 to 64 (bits per stored value), got {bits!r}")
    return math.ceil(numel * bits / 8)


def count_parameters(model: nn.Module) -> int:
    """Number of stored weight values (quantised weights included, shared tensors once)."""
    return sum(t.numel for t in stored_tensors(model))


def count_nonzero_parameters(model: nn.Module) -> int:
    """Number of stored weight values that read back as non-zero (shared tensors once)."""
    return sum(t.nonzero for t in stored_tensors(model))


@reference_answer("04_precision_rank_sharing")
def model_bytes(model: nn.Module) -> int:
    """Bytes of ``model`` as stored, dense: for each stored tensor (shared ones once),
    ``ceil(numel * bits / 8)`` at its precision plus its scales and zero points (module docstring)."""
    return sum(t.nbytes for t in stored_tensors(model))


def csr_bytes(shape, nnz: int, bits: int) -> int:
    """Bytes of a tensor of ``shape`` with ``nnz`` stored values in CSR with int32 indices:
    ``ceil(nnz * bits / 8) + 4 * nnz + 4 * (rows + 1)``, rows = ``shape[0]`` (1 for a vector)."""
    shape = tuple(shape)
    nnz = _check_count(nnz, "nnz")
    if nnz > math.prod(shape):
        raise ValueError(f"nnz={nnz} exceeds the {math.prod(shape)} entries of shape {shape}")
    rows = shape[0] if len(shape) >= 2 else 1
    return tensor_bytes(nnz, bits) + INDEX_BYTES * nnz + INDEX_BYTES * (rows + 1)


def _check_mask(mask: Mask, tensors: dict[str, StoredTensor]) -> None:
    if not isinstance(mask, Mask):
        raise ValueError(f"mask must be a compresslib.prune.Mask, got {type(mask).__name__}")
    unknown = [name for name in mask if name not in tensors]
    if unknown:
        raise ValueError(f"mask names tensors the model does not store: {unknown[:3]}; it stores e.g. {list(tensors)[:3]}")
    for name in mask:
        stored = tensors[name]
        if tuple(mask[name].shape) != stored.shape:
            raise ValueError(f"mask[{name!r}] has shape {tuple(mask[name].shape)} but the tensor has {stored.shape}")
        pruned_nonzero = int((~mask[name].cpu() & ~stored.is_zero.cpu()).sum())
        if pruned_nonzero:
            raise ValueError(
                f"{pruned_nonzero} weights of {name} are pruned by the mask but not zero in the model; "
                "apply the mask (compresslib.prune.apply_mask) before counting"
            )


def sparse_bytes(model: nn.Module, mask: Mask) -> int:
    """Bytes of ``model`` as stored with the tensors ``mask`` names in CSR (int32 indices; nnz = the
    mask's kept entries, values at the tensor's precision, scales as they are) and the others dense."""
    return _sparse_bytes(stored_tensors(model), mask)


def _sparse_bytes(stored: list[StoredTensor], mask: Mask) -> int:
    tensors = {t.name: t for t in stored}
    _check_mask(mask, tensors)
    total = 0
    for name, stored in tensors.items():
        if name in mask:
            total += csr_bytes(stored.shape, int(mask[name].sum()), stored.bits) + stored.overhead_bytes
        else:
            total += stored.nbytes
    return total


# --- multiply-adds -------------------------------------------------------------------------------

def _is_self_attention(module: nn.Module) -> bool:
    return isinstance(getattr(module, "num_attention_heads", None), int) and isinstance(
        getattr(module, "attention_head_size", None), int)


def _default_inputs(model: nn.Module, seq_len) -> dict[str, torch.Tensor]:
    if isinstance(seq_len, bool) or not isinstance(seq_len, Integral) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer (tokens in the sequence), got {seq_len!r}")
    device = next(model.parameters()).device
    ones = torch.ones(1, int(seq_len), dtype=torch.long, device=device)
    return {"input_ids": ones * 0, "attention_mask": ones}


@torch.no_grad()
def count_multiply_adds(model: nn.Module, seq_len: int | None = None, *, inputs=None) -> int:
    """Multiply-adds of one forward pass of ``model``, traced with forward hooks (module docstring):
    on one sequence of ``seq_len`` tokens (``input_ids`` of shape (1, seq_len)), or on ``inputs`` (a
    tensor, or a dict of keyword arguments) for a model that takes something else."""
    if (seq_len is None) == (inputs is None):
        raise ValueError("give exactly one of seq_len (for a model taking input_ids) or inputs")
    if inputs is None:
        inputs = _default_inputs(model, seq_len)
    linear_types = (nn.Linear, QuantizedLinear, _dynamic_linear_type())
    total = 0

    def linear_hook(module, args, output):
        nonlocal total
        total += output.numel() * module.in_features

    def attention_hook(module, args, output):
        nonlocal total
        context = output[0] if isinstance(output, tuple) else output
        batch, length, width = context.shape[0], context.shape[1], context.shape[-1]
        total += 2 * batch * length * length * width

    handles = []
    for module in model.modules():
        if isinstance(module, linear_types):
            handles.append(module.register_forward_hook(linear_hook))
        elif _is_self_attention(module):
            handles.append(module.register_forward_hook(attention_hook))
    was_training = model.training
    model.eval()
    try:
        if isinstance(inputs, Mapping):
            model(**inputs)
        else:
            model(inputs)
    except TypeError as error:
        raise ValueError(f"the model did not accept these inputs ({error}); pass inputs= for a model that "
                         "does not take input_ids") from error
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


# --- latency -------------------------------------------------------------------------------------

def compare_latency(models: Mapping[str, nn.Module], batch: Mapping[str, torch.Tensor], *, baseline: str | None = None,
                    rounds: int = 5, repeats: int = 3, amp: bool = False) -> dict[str, tuple[float, float]]:
    """``{name: (seconds, speed-up)}`` for one forward pass of each model on the same ``batch``: the best
    of ``rounds`` interleaved rounds of ``repeats`` passes (A, B, C, A, B, C, ...), each model on its own
    device and at its own precision (``amp=True``: under bf16 autocast on CUDA, as training runs);
    speed-up = baseline seconds / seconds (``baseline``: the first model by default)."""
    if not models:
        raise ValueError("models is empty: nothing to time")
    baseline = next(iter(models)) if baseline is None else baseline
    if baseline not in models:
        raise ValueError(f"baseline {baseline!r} is not one of the models {list(models)}")
    seconds = compare_inference_times(dict(models), [dict(batch)], rounds=rounds, repeats=repeats, amp=amp)
    return {name: (s, seconds[baseline] / s) for name, s in seconds.items()}


# --- the table -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerRow:
    """One model's costs. ``bytes``: dense as stored; ``bytes_sparse``: with the masked tensors in CSR
    (``None`` without a mask); ``multiply_adds`` for one sequence of ``seq_len`` tokens; ``latency_s``
    for one pass over the timing batch and ``speedup`` against the ledger's baseline (``None`` when not
    timed); ``accuracy`` when evaluated."""

    name: str
    parameters: int
    nonzero_parameters: int
    bytes: int
    multiply_adds: int
    seq_len: int
    bytes_sparse: int | None = None
    latency_s: float | None = None
    speedup: float | None = None
    accuracy: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "LedgerRow":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ledger fields {sorted(unknown)}; a row has {sorted(known)}")
        return cls(**data)


def ledger_row(name: str, model: nn.Module, *, seq_len: int = 64, mask: Mask | None = None, inputs=None,
               accuracy: float | None = None, latency: tuple[float, float] | None = None, note: str = "",
               count_bytes: Callable[[nn.Module], int] = model_bytes) -> LedgerRow:
    """The :class:`LedgerRow` of ``model``: its counts, the CSR bytes when ``mask`` is given, the
    multiply-adds at ``seq_len`` tokens (or on ``inputs``), and the ``accuracy`` and ``latency``
    (seconds, speed-up) measured elsewhere. ``count_bytes`` replaces :func:`model_bytes` (a notebook
    passes the student's own)."""
    tensors = stored_tensors(model)
    return LedgerRow(
        name=name,
        parameters=sum(t.numel for t in tensors),
        nonzero_parameters=sum(t.nonzero for t in tensors),
        bytes=sum(t.nbytes for t in tensors) if count_bytes is model_bytes else int(count_bytes(model)),
        multiply_adds=count_multiply_adds(model, None if inputs is not None else seq_len, inputs=inputs),
        seq_len=seq_len,
        bytes_sparse=None if mask is None else _sparse_bytes(tensors, mask),
        latency_s=None if latency is None else float(latency[0]),
        speedup=None if latency is None else float(latency[1]),
        accuracy=None if accuracy is None else float(accuracy),
        note=note,
    )


def _format_count(value: int) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,}"


def _format_bytes(value: int) -> str:
    return f"{value / 1e6:.2f} MB" if value >= 1e5 else f"{value:,} B"


@dataclass
class Ledger:
    """A table of :class:`LedgerRow` s, one per model, in the order added. ``baseline`` names the row
    the size ratios and speed-ups compare with (the first row by default). Serialises to JSON
    (:meth:`save`, :meth:`load`) and renders as Markdown (:meth:`to_markdown`)."""

    rows: list[LedgerRow] = field(default_factory=list)
    baseline: str | None = None
    sparse_format: str = SPARSE_FORMAT

    def add(self, row: LedgerRow) -> LedgerRow:
        if not isinstance(row, LedgerRow):
            raise ValueError(f"row must be a LedgerRow, got {type(row).__name__}")
        if any(r.name == row.name for r in self.rows):
            raise ValueError(f"the ledger already has a row named {row.name!r}")
        self.rows.append(row)
        return row

    def __getitem__(self, name: str) -> LedgerRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no ledger row named {name!r}; rows: {[r.name for r in self.rows]}")

    def __len__(self) -> int:
        return len(self.rows)

    def baseline_row(self) -> LedgerRow | None:
        if not self.rows:
            return None
        return self[self.baseline] if self.baseline is not None else self.rows[0]

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "sparse_format": self.sparse_format, "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Ledger":
        return cls([LedgerRow.from_dict(r) for r in data["rows"]], data.get("baseline"),
                   data.get("sparse_format", SPARSE_FORMAT))

    def save(self, path) -> Path:
        """Write the ledger as JSON (atomically: a temporary file renamed over ``path``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> "Ledger":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_markdown(self) -> str:
        """The ledger as a Markdown table; columns that no row fills are left out. "x smaller" is the
        baseline's dense bytes over the row's (sparse bytes when smaller)."""
        base = self.baseline_row()
        columns: list[tuple[str, Callable[[LedgerRow], str]]] = [
            ("model", lambda r: r.name),
            ("parameters", lambda r: _format_count(r.parameters)),
            ("non-zero", lambda r: _format_count(r.nonzero_parameters)),
            ("bytes", lambda r: _format_bytes(r.bytes)),
        ]
        if any(r.bytes_sparse is not None for r in self.rows):
            columns.append(("bytes, CSR", lambda r: "" if r.bytes_sparse is None else _format_bytes(r.bytes_sparse)))
        columns += [
            ("x smaller", lambda r: f"{base.bytes / min(r.bytes, r.bytes_sparse or r.bytes):.2f}"),
            ("multiply-adds", lambda r: f"{_format_count(r.multiply_adds)} @ {r.seq_len}"),
        ]
        if any(r.latency_s is not None for r in self.rows):
            columns += [("latency", lambda r: "" if r.latency_s is None else f"{1e3 * r.latency_s:.1f} ms"),
                        ("speed-up", lambda r: "" if r.speedup is None else f"{r.speedup:.2f}x")]
        if any(r.accuracy is not None for r in self.rows):
            columns.append(("accuracy", lambda r: "" if r.accuracy is None else f"{100 * r.accuracy:.1f}%"))
        if any(r.note for r in self.rows):
            columns.append(("note", lambda r: r.note))
        lines = ["| " + " | ".join(title for title, _ in columns) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
        lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in self.rows]
        return "\n".join(lines)


def build_ledger(models: Mapping[str, nn.Module], *, seq_len: int = 64, masks: Mapping[str, Mask] | None = None,
                 batch: Mapping[str, torch.Tensor] | None = None, baseline: str | None = None,
                 evaluate: Callable[[nn.Module], float] | None = None, notes: Mapping[str, str] | None = None,
                 rounds: int = 5, repeats: int = 3) -> Ledger:
    """The :class:`Ledger` of ``models`` (``{name: model}``, the baseline first unless ``baseline`` is
    given): counts for each, CSR bytes for those with a mask in ``masks``, latency on ``batch``
    (interleaved, all models against the baseline; not timed without a batch), and
    ``evaluate(model) -> accuracy`` when given."""
    masks, notes = dict(masks or {}), dict(notes or {})
    unknown = (set(masks) | set(notes)) - set(models)
    if unknown:
        raise ValueError(f"masks or notes name models that are not in models: {sorted(unknown)}")
    if baseline is not None and baseline not in models:
        raise ValueError(f"baseline {baseline!r} is not one of the models {list(models)}")
    latencies = compare_latency(models, batch, baseline=baseline, rounds=rounds, repeats=repeats) if batch is not None else {}
    ledger = Ledger(baseline=baseline)
    for name, model in models.items():
        ledger.add(ledger_row(
            name, model, seq_len=seq_len, mask=masks.get(name), latency=latencies.get(name),
            accuracy=None if evaluate is None else evaluate(model), note=notes.get(name, ""),
        ))
    return ledger
