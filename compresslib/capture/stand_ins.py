"""Stand-ins: a dependent function graded on its own merits, not on the student's earlier functions.

``combined_loss`` calls the student's ``distillation_loss``; ``imp_round`` calls their
``prune_remaining``. Were they graded as written, one mistake would cost its points again in every
later cell. While a dependent function's harness runs, each earlier graded function it may call is
replaced in the notebook's namespace by a stand-in that asks the grader's *oracle*, outside the
sandbox, for the correct result of exactly the call it received: the reference answer runs in the
trusted process on the arguments the student's code passed, and only its result comes back (with the
Jacobian with respect to one argument where gradients must flow, and the in-place updates of
functions such as ``apply_mask``). If the oracle cannot answer (outside grading, or a function
outside this test's scope), the call goes to the student's own function.

So nothing is stored in the sandbox: no recorded result a submission could read and return. To get
a correct answer from a stand-in, the student's function must make the right call, which is the part
of the answer that is its own. The oracle answers only during a dependent test's cell and only for
the functions that test depends on, whose own tests have already run.

The request travels on the kernel's stdin channel: ``input(ORACLE_PROMPT + json)``, answered by the
grading executor (:mod:`compresslib.grading.execute`). In-process tests set a transport directly.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Iterator, Mapping, MutableMapping

import torch

from compresslib.capture.plain import from_input, input_of

ORACLE_PROMPT = "\x1b[compresslib-oracle]"
MAX_REQUEST_BYTES = 2_000_000
Transport = Callable[[dict], dict]
_transport: Transport | None = None


class OracleRaised(Exception):
    """The reference answer itself raised on these arguments (e.g. a sparsity outside [0, 1))."""


def set_transport(transport: Transport | None) -> None:
    """Send oracle requests to ``transport`` instead of the kernel's stdin (in-process tests)."""
    global _transport
    _transport = transport


def ask_oracle(request: dict) -> dict:
    """The oracle's reply to ``request``, or ``{"unavailable": reason}``."""
    text = json.dumps(request)
    if len(text) > MAX_REQUEST_BYTES:
        return {"unavailable": "request too large"}
    if _transport is not None:
        return _transport(json.loads(text))
    try:
        reply = input(ORACLE_PROMPT + text)
    except (EOFError, RuntimeError, OSError) as error:  # no stdin: not being graded
        return {"unavailable": f"no oracle ({type(error).__name__})"}
    try:
        return json.loads(reply) if reply else {"unavailable": "no oracle"}
    except ValueError:
        return {"unavailable": "unreadable reply"}


def encode_argument(value):
    """An argument in the oracle's input format: tensors, dicts of tensors, a model's state, numbers."""
    if isinstance(value, torch.nn.Module):
        return {"module": input_of(dict(value.state_dict()))}
    if isinstance(value, torch.Tensor):
        return input_of(torch.Tensor.as_subclass(value, torch.Tensor).detach().cpu())
    if isinstance(value, Mapping):
        return {"mapping": {str(k): encode_argument(v) for k, v in value.items()}}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return {"unsupported": type(value).__name__}


class _WithJacobian(torch.autograd.Function):
    """The oracle's value, whose gradient with respect to ``source`` is the oracle's Jacobian
    transposed times the upstream gradient."""

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


def _update_in_place(target, values: Mapping) -> None:
    """Copy tensors into a model's state (or a dict of tensors) in place."""
    tensors = target.state_dict() if isinstance(target, torch.nn.Module) else target
    with torch.no_grad():
        for key, value in values.items():
            tensors[key].copy_(value)


def rebuild(reply: Mapping, bound: Mapping):
    """The stand-in's return value from the oracle's reply: in-place updates applied to the arguments,
    then the result (an argument itself, or a value carrying the Jacobian where one was sent)."""
    for argument, state in reply.get("updates", {}).items():
        _update_in_place(bound[argument], from_input(state))
    if "result_argument" in reply:
        return bound[reply["result_argument"]]
    value = from_input(reply["result"])
    source = bound.get(reply.get("jacobian_wrt", ""))
    if isinstance(value, torch.Tensor) and isinstance(source, torch.Tensor) and source.is_floating_point():
        value = value.to(source.dtype)
        if source.requires_grad and "jacobian" in reply:
            return _WithJacobian.apply(source, value, torch.tensor(reply["jacobian"], dtype=value.dtype))
    return value


def stand_in(name: str, signature: list, own: Callable | None) -> Callable:
    """A function that asks the oracle for the correct result of each call of ``name`` and falls back to
    the student's ``own`` function when it cannot answer. ``signature`` lists the parameters as names
    or ``[name, default]``."""
    parameters = []
    for entry in signature:
        name_, default = (entry, inspect.Parameter.empty) if isinstance(entry, str) else entry
        parameters.append(inspect.Parameter(name_, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    signature_object = inspect.Signature(parameters)

    def answer(*args, **kwargs):
        try:
            binding = signature_object.bind(*args, **kwargs)
        except TypeError:
            binding = None
        if binding is not None:
            binding.apply_defaults()
            bound = binding.arguments
            reply = ask_oracle({"function": name, "args": {k: encode_argument(v) for k, v in bound.items()}})
            if "raised" in reply:
                raise OracleRaised(f"{name}: {reply['raised']}")
            if "unavailable" not in reply:
                return rebuild(reply, bound)
        if own is None:
            raise NotImplementedError(f"{name} is not defined")
        return own(*args, **kwargs)

    answer.__name__ = name
    return answer


@contextlib.contextmanager
def stand_ins(namespace: MutableMapping, specs: Mapping[str, Mapping]) -> Iterator[None]:
    """Replace each earlier function named in ``specs`` (``{name: {"signature": [...]}}``) by its
    stand-in while the block runs; restore the student's own afterwards."""
    saved = {name: namespace.get(name, _MISSING) for name in specs}
    try:
        for name, spec in specs.items():
            own = saved[name] if callable(saved[name]) else None
            namespace[name] = stand_in(name, spec["signature"], own)
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


_MISSING = object()
