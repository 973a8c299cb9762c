"""Stand-ins: a dependent function graded on its own merits, not on the student's earlier functions.

``combined_loss`` calls the student's ``distillation_loss``; ``kd_step`` calls their ``combined_loss``.
Were they graded as written, one mistake would cost its points again in every later cell. While a
dependent function's harness runs, each earlier graded function it may call is replaced in the
notebook's namespace by a stand-in that answers the calls a correct answer makes with *recorded*
results: the fixture stores, for each such call, its arguments, its result and (for a differentiable
result) the Jacobian of the result with respect to one argument, so gradients flow as they would
through the correct function. A call with other arguments goes to the student's own function.

The recorded results are those of earlier functions at the points where the dependent test calls them:
no expected value of any test, and no code, enters the sandbox. Stand-ins are installed only while
the dependent test runs, after the earlier tests have already reported.

Functions that work in place (``apply_mask(model, mask)`` zeroes a model's pruned weights) are
recorded the same way: an argument ``{"module": {"mapping": state}}`` matches a model whose
``state_dict()`` has those values, ``"updates": {argument: {"mapping": {name: tensor}}}`` lists the
tensors of that argument's state the call leaves behind (copied into it in place), and a result
``{"argument": name}`` returns that argument itself (the model).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping

import torch

from compresslib.capture.plain import from_input


def _same(recorded, given) -> bool:
    """Does an argument the student passed equal the recorded one?"""
    if isinstance(recorded, dict) and "tensor" in recorded:
        if not isinstance(given, torch.Tensor):
            return False
        want = from_input(recorded).double()
        have = torch.Tensor.as_subclass(given, torch.Tensor).detach().cpu().double()
        return have.shape == want.shape and bool(torch.allclose(have, want, rtol=1e-5, atol=1e-7))
    if isinstance(recorded, dict) and "module" in recorded:
        return isinstance(given, torch.nn.Module) and _same(recorded["module"], dict(given.state_dict()))
    if isinstance(recorded, dict) and "mapping" in recorded:
        if not isinstance(given, Mapping) or set(map(str, given)) != set(recorded["mapping"]):
            return False
        return all(_same(recorded["mapping"][str(k)], v) for k, v in given.items())
    if isinstance(recorded, float) or isinstance(given, float):
        try:
            return math.isclose(float(given), float(recorded), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return given == recorded


class _Recorded(torch.autograd.Function):
    """A tensor with a recorded value whose gradient is the recorded Jacobian's transpose times the
    upstream gradient, w.r.t. the one input it was recorded for."""

    @staticmethod
    def forward(ctx, source, value, jacobian):
        ctx.save_for_backward(jacobian)
        ctx.source_shape = source.shape
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        (jacobian,) = ctx.saved_tensors
        grad = jacobian.t() @ grad_output.reshape(-1).to(jacobian.dtype)
        return grad.reshape(ctx.source_shape), None, None


def _result(call: Mapping, bound: Mapping):
    """The recorded result of ``call``, rebuilt as an input (a tensor in the dtype of the argument it
    was recorded for, carrying the recorded Jacobian as its gradient when that argument needs one), after
    the call's recorded in-place ``updates``."""
    for argument, state in call.get("updates", {}).items():
        _update_in_place(bound[argument], from_input(state))
    if isinstance(call["result"], dict) and "argument" in call["result"]:
        return bound[call["result"]["argument"]]
    value = from_input(call["result"])
    source = bound.get(call.get("jacobian_wrt", ""))
    if isinstance(value, torch.Tensor) and isinstance(source, torch.Tensor) and source.is_floating_point():
        value = value.to(source.dtype)
        if source.requires_grad and "jacobian" in call:
            return _Recorded.apply(source, value, torch.tensor(call["jacobian"], dtype=value.dtype))
    return value


def _update_in_place(target, values: Mapping) -> None:
    """Copy recorded tensors into a model's state (or a dict of tensors) in place."""
    tensors = target.state_dict() if isinstance(target, torch.nn.Module) else target
    with torch.no_grad():
        for key, value in values.items():
            tensors[key].copy_(value)


def stand_in(name: str, signature: list, calls: list[Mapping], own: Callable | None) -> Callable:
    """A function that answers the recorded ``calls`` of ``name`` and sends any other call to the
    student's ``own`` function. ``signature`` lists the parameters as names or ``[name, default]``."""
    parameters = []
    for entry in signature:  # "name", or ["name", default]
        name_, default = (entry, inspect.Parameter.empty) if isinstance(entry, str) else entry
        parameters.append(inspect.Parameter(name_, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    signature_object = inspect.Signature(parameters)

    def answer(*args, **kwargs):
        try:
            binding = signature_object.bind(*args, **kwargs)
            binding.apply_defaults()
            bound = binding.arguments
        except TypeError:
            bound = None
        if bound is not None:
            for call in calls:
                recorded = call["args"]
                if set(recorded) == set(bound) and all(_same(recorded[k], bound[k]) for k in recorded):
                    return _result(call, bound)
        if own is None:
            raise NotImplementedError(f"{name} is not defined")
        return own(*args, **kwargs)

    answer.__name__ = name
    return answer


@contextlib.contextmanager
def stand_ins(namespace: MutableMapping, recorded: Mapping[str, Mapping]) -> Iterator[None]:
    """Replace each earlier function named in ``recorded`` (``{name: {"signature": [...], "calls": [...]}}``)
    by its stand-in while the block runs; restore the student's own afterwards."""
    saved = {name: namespace.get(name, _MISSING) for name in recorded}
    try:
        for name, spec in recorded.items():
            own = saved[name] if callable(saved[name]) else None
            namespace[name] = stand_in(name, spec["signature"], spec["calls"], own)
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


_MISSING = object()
