"""Plain data: the wire formats between the grader and the student's kernel.

Inputs come in as JSON: a tensor is ``{"tensor": nested lists, "dtype": "float32"}`` (dtype optional,
float32 by default), a dict of inputs ``{"mapping": {...}}``, a tuple of inputs ``{"tuple": [...]}``
(e.g. the two factors an oracle returns); numbers, strings and lists stay as they are. :func:`from_input` builds them.

Results cross from the sandbox to the trusted scorer as JSON only (numbers, strings, lists, dicts):
never pickles, never objects with methods. A tensor becomes ``{"tensor": {"dtype", "shape", "data"}}``
with its values flattened; non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"``
(JSON has no NaN). Anything else becomes a short description of its type. The trusted side reads the
same format back with :func:`array_of`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

MAX_STRING = 2_000
MAX_ITEMS = 200_000
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class PlainDataError(ValueError):
    """A payload that is not the plain data this module writes."""


def _number(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def tensor_to_plain(t) -> dict:
    """A tensor's dtype, shape and flattened values (read through the base class, whatever its subclass)."""
    import torch

    base = torch.Tensor.as_subclass(t, torch.Tensor).detach().cpu()
    if base.numel() > MAX_ITEMS:
        return {"too_large": {"shape": list(base.shape), "dtype": str(base.dtype).removeprefix("torch.")}}
    flat = base.reshape(-1)
    if base.is_complex():
        return {"unsupported": f"complex tensor of shape {list(base.shape)}"}
    if base.dtype == torch.bool:
        values = [bool(v) for v in flat.tolist()]
    elif base.is_floating_point():
        values = [_number(float(v)) for v in flat.double().tolist()]
    else:
        values = [int(v) for v in flat.tolist()]
    return {"tensor": {"dtype": str(base.dtype).removeprefix("torch."), "shape": list(base.shape), "data": values}}


def to_plain(value, depth: int = 0):
    """``value`` as JSON-safe plain data (see the module docstring)."""
    import torch

    if depth > 6:
        return {"unsupported": "nested too deeply"}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else float(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return value[:MAX_STRING]
    if isinstance(value, torch.Tensor):
        return tensor_to_plain(value)
    if isinstance(value, np.ndarray | np.generic):
        return tensor_to_plain(torch.from_numpy(np.array(value, dtype=np.float64 if value.dtype.kind == "f" else None)))
    if isinstance(value, Mapping):
        return {"mapping": {str(k)[:200]: to_plain(v, depth + 1) for k, v in list(value.items())[:1000]}}
    if isinstance(value, list | tuple):
        return {"sequence": [to_plain(v, depth + 1) for v in list(value)[:10_000]], "kind": type(value).__name__}
    return {"unsupported": type(value).__name__[:200]}


def from_input(spec):
    """An input value from its JSON form (see the module docstring)."""
    import torch

    if isinstance(spec, dict) and "tensor" in spec:
        dtype = getattr(torch, spec.get("dtype", "float32"))
        return torch.tensor(spec["tensor"], dtype=dtype)
    if isinstance(spec, dict) and "mapping" in spec:
        return {k: from_input(v) for k, v in spec["mapping"].items()}
    if isinstance(spec, dict) and "tuple" in spec:
        return tuple(from_input(v) for v in spec["tuple"])
    return spec


def input_of(value):
    """The JSON form of an input value (the inverse of :func:`from_input`; used by recorders)."""
    import torch

    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().cpu().tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, np.ndarray):
        return {"tensor": value.tolist(), "dtype": "float64" if value.dtype.kind == "f" else str(value.dtype)}
    if isinstance(value, Mapping):
        return {"mapping": {str(k): input_of(v) for k, v in value.items()}}
    return value


# --- reading plain data back (the trusted side) ----------------------------------------------------


def is_tensor(plain) -> bool:
    return isinstance(plain, dict) and "tensor" in plain


def array_of(plain, what: str = "the result") -> np.ndarray:
    """The float64 (or int/bool) NumPy array of a plain tensor; PlainDataError when it is not one."""
    if not is_tensor(plain):
        raise PlainDataError(f"{what} is not a tensor")
    body = plain["tensor"]
    try:
        shape = [int(s) for s in body["shape"]]
        data = body["data"]
        if not isinstance(data, list) or len(data) != int(np.prod(shape, dtype=np.int64)):
            raise PlainDataError(f"{what}: {len(data)} values for shape {shape}")
        if body["dtype"] == "bool":
            return np.array([bool(v) for v in data], dtype=bool).reshape(shape)
        values = [NON_FINITE[v] if isinstance(v, str) else float(v) for v in data]
    except (KeyError, TypeError, ValueError) as error:
        raise PlainDataError(f"{what} is not a well-formed tensor: {error}") from None
    return np.array(values, dtype=np.float64).reshape(shape)


def describe(plain) -> str:
    """A short human description of what a student's function returned (for feedback messages)."""
    if is_tensor(plain):
        body = plain["tensor"]
        data = body["data"]
        head = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in data[:4])
        more = ", ..." if len(data) > 4 else ""
        if not body["shape"]:
            return f"tensor({head}, dtype={body['dtype']})"
        return f"a {body['dtype']} tensor of shape {tuple(body['shape'])} starting [{head}{more}]"
    if isinstance(plain, dict) and "too_large" in plain:
        return f"a tensor of shape {tuple(plain['too_large']['shape'])} (too large to report)"
    if isinstance(plain, dict) and "unsupported" in plain:
        return f"a {plain['unsupported']}"
    if isinstance(plain, dict) and "mapping" in plain:
        return f"a dict with keys {sorted(plain['mapping'])[:8]}"
    if isinstance(plain, dict) and "sequence" in plain:
        return f"a {plain.get('kind', 'list')} of {len(plain['sequence'])} items"
    if isinstance(plain, float | int | str | bool) or plain is None:
        return f"{type(plain).__name__} {plain!r}"[:200]
    return "something that is not plain data"
