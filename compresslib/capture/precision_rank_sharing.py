"""Harnesses of notebook 04 (precision, rank and sharing): how the hidden tests call the student's
functions and what they observe. The trusted side (``compresslib.grading``) decides what is right.

* ``quantize_per_channel``, ``dequantize_per_channel`` and ``low_rank_factors`` are called on fresh
  copies of the hidden tensors; observed: what they return (values, shapes, dtypes) and whether an
  input was modified. ``dequantize_per_channel`` gets recorded codes and scales, so it is graded on its
  own, whatever the student's quantisation does.
* ``factorize_linear`` gets an ``nn.Linear`` built from the hidden weight and bias, with
  ``low_rank_factors`` replaced by its stand-in; observed: the layer it returns applied to hidden
  inputs, its parameters (how many, trainable or not), whether it is the layer it was given, and
  whether that layer was modified.
* ``low_rank_parameter_count`` and ``stored_bytes`` are called with hidden sizes; observed: the number.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from compresslib.capture import MissingFunction, harness, observe, student_function
from compresslib.capture.plain import from_input, to_plain
from compresslib.capture.stand_ins import stand_ins

ASSIGNMENT = "04_precision_rank_sharing"


def _changed(before: torch.Tensor, after: torch.Tensor) -> bool:
    return after.dtype != before.dtype or after.shape != before.shape or not torch.equal(after, before)


def observe_unchanged(function, inputs: Mapping, names: list[str], **kwargs) -> dict:
    """Call ``function`` on fresh copies of the tensors ``names`` (positionally); report its result and
    which of those inputs it modified."""
    originals = [from_input(inputs[name]) for name in names]
    given = [value.clone() if isinstance(value, torch.Tensor) else value for value in originals]
    observed = observe(function, *given, **kwargs)
    observed["inputs_changed"] = [name for name, a, b in zip(names, originals, given)
                                  if isinstance(a, torch.Tensor) and _changed(a, b)]
    return observed


@harness(ASSIGNMENT, "test_quantize_per_channel")
def quantize_per_channel(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "quantize_per_channel")
    return observe_unchanged(lambda weight: function(weight, inputs["bits"]), inputs, ["weight"])


@harness(ASSIGNMENT, "test_dequantize_per_channel")
def dequantize_per_channel(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "dequantize_per_channel")
    return observe_unchanged(function, inputs, ["codes", "scales"])


@harness(ASSIGNMENT, "test_low_rank_factors")
def low_rank_factors(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "low_rank_factors")
    return observe_unchanged(lambda weight: function(weight, inputs["rank"]), inputs, ["weight"])


# --- factorize_linear ---------------------------------------------------------------------------------


def _failure(error: BaseException) -> dict:
    if isinstance(error, NotImplementedError):
        return {"status": "not_implemented", "error": str(error)[:500]}
    if isinstance(error, MissingFunction):
        return {"status": "missing", "name": str(error)}
    return {"status": "raised", "error": f"{type(error).__name__}: {error}"[:1000]}


def hidden_linear(inputs: Mapping) -> nn.Linear:
    """The ``nn.Linear`` of the hidden weight (out x in) and bias (or none)."""
    weight = from_input(inputs["weight"])
    bias = None if inputs.get("bias") is None else from_input(inputs["bias"])
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


@harness(ASSIGNMENT, "test_factorize_linear")
def factorize_linear(inputs: Mapping, namespace) -> dict:
    """``factorize_linear(linear, rank)``; the module it returns is then applied to the hidden inputs
    ``x`` (no gradients), and its parameters are counted (each shared tensor once)."""
    function = student_function(namespace, "factorize_linear")
    linear = hidden_linear(inputs)
    before = {name: t.detach().clone() for name, t in linear.state_dict().items()}
    with stand_ins(namespace, inputs.get("stand_ins", {})):
        try:
            module = function(linear, inputs["rank"])
        except Exception as error:  # the student's code may raise anything; reported, not judged here
            return _failure(error)
    after = linear.state_dict()
    observed = {
        "status": "ok",
        "linear_changed": [n for n, t in before.items() if n not in after or _changed(t, after[n].detach())],
        "is_module": isinstance(module, nn.Module),
        "same_object": module is linear,
        "returned": type(module).__name__[:200],
    }
    if not isinstance(module, nn.Module):
        return observed
    parameters = {id(p): p for p in module.parameters()}.values()
    observed["parameters"] = sum(p.numel() for p in parameters)
    observed["trainable"] = all(p.requires_grad for p in parameters)
    x = from_input(inputs["x"]).to(linear.weight.dtype)
    try:
        with torch.no_grad():
            output = module(x.clone())
        observed["output"] = {"status": "ok", "value": to_plain(output)}
    except Exception as error:
        observed["output"] = _failure(error)
    return observed


# --- counts -------------------------------------------------------------------------------------------


@harness(ASSIGNMENT, "test_low_rank_parameter_count")
def low_rank_parameter_count(inputs: Mapping, namespace) -> dict:
    function = student_function(namespace, "low_rank_parameter_count")
    return observe(function, inputs["in_features"], inputs["out_features"], inputs["rank"], bias=inputs["bias"])


@harness(ASSIGNMENT, "test_stored_bytes")
def stored_bytes(inputs: Mapping, namespace) -> dict:
    """``stored_bytes(numel, bits)``, or ``stored_bytes(numel, bits, scales)`` when the case gives scales
    (so that the default, no scales, is exercised too)."""
    function = student_function(namespace, "stored_bytes")
    args = [inputs["numel"], inputs["bits"]] + ([inputs["scales"]] if "scales" in inputs else [])
    return observe(function, *args)
