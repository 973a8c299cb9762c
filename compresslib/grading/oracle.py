"""The oracle: correct results of earlier graded functions, computed in the trusted process for the
stand-ins of a dependent test (:mod:`compresslib.capture.stand_ins`).

Each oracle function takes the call's decoded arguments (NumPy arrays, dicts of arrays, a model's
state as a dict, numbers) and returns a reply: ``{"result": ...}`` in the input format, optionally
``"jacobian_wrt"`` and ``"jacobian"`` (d result / d argument, flattened, for gradients to flow),
``"updates"`` (an argument's tensors after an in-place call) and ``"result_argument"`` (the call
returns that argument). It is answered only for the functions in the dependent test's scope: the
``stand_ins`` its hidden inputs declare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from compresslib.capture.registry import Registry
from compresslib.grading.judging import JUDGE_MODULES

Oracle = Callable[[Mapping], dict]
ORACLES = Registry("oracle", JUDGE_MODULES)  # the oracles live beside the judges
oracle = ORACLES.register
"""``@oracle(assignment, function)`` registers the oracle of one earlier graded function."""


def decode(value):
    """An argument from the wire: tensors as float64 (or int/bool) arrays, mappings as dicts."""
    if isinstance(value, dict) and "tensor" in value:
        dtype = value.get("dtype", "float32")
        kind = bool if dtype == "bool" else np.int64 if dtype.startswith("int") else np.float64
        return np.asarray(value["tensor"], dtype=kind)
    if isinstance(value, dict) and "module" in value:
        return decode(value["module"])
    if isinstance(value, dict) and "mapping" in value:
        return {k: decode(v) for k, v in value["mapping"].items()}
    return value


def tensor(array, dtype: str = "float32") -> dict:
    return {"tensor": np.asarray(array, dtype=np.float64).tolist(), "dtype": dtype}


def mapping(arrays: Mapping, dtype: str = "float32") -> dict:
    return {"mapping": {name: tensor(a, dtype) for name, a in arrays.items()}}


def scope(stand_in_specs: list[Mapping]) -> set[str]:
    """The functions a dependent test's oracle may answer: every stand-in its cases declare."""
    return {name for specs in stand_in_specs for name in specs}


def answer(assignment: str, allowed: set[str], request) -> dict:
    """The reply to one stand-in request (never raises: a bad request gets ``unavailable``)."""
    if not isinstance(request, Mapping) or not isinstance(request.get("args"), Mapping):
        return {"unavailable": "malformed request"}
    function = request.get("function")
    if function not in allowed:
        return {"unavailable": f"{function!r} is not answered in this test"}
    compute = ORACLES.find(assignment, function)
    if compute is None:
        return {"unavailable": f"no oracle for {function!r}"}
    try:
        arguments = {name: decode(value) for name, value in request["args"].items()}
    except (TypeError, ValueError) as error:
        return {"unavailable": f"unreadable arguments ({type(error).__name__})"}
    try:
        return compute(arguments)
    except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as error:
        return {"raised": f"{type(error).__name__}: {error}"[:500]}


class StandInOracle:
    """The executor's side of the stand-ins: for each hidden test cell whose inputs declare stand-ins,
    a stdin handler that answers their requests (any other prompt, e.g. a student's ``input()``, gets
    an empty line)."""

    def __init__(self, assignment: str, scopes: Mapping[str, set[str]]):
        self.assignment, self.scopes = assignment, dict(scopes)

    @classmethod
    def from_inputs(cls, assignment: str, inputs_path) -> StandInOracle:
        """Scopes read from the hidden inputs file: ``{test: {functions its stand-ins may ask for}}``."""
        import json
        from pathlib import Path

        inputs = json.loads(Path(inputs_path).read_text())
        return cls(assignment, {test: scope([case.get("stand_ins", {}) for case in spec.get("cases", [])])
                                for test, spec in inputs.items()})

    def handler(self, grade_id: str | None):
        allowed = self.scopes.get(grade_id or "")
        if not allowed:
            return None

        def reply(prompt: str) -> str:
            import json

            from compresslib.capture.stand_ins import ORACLE_PROMPT

            if not prompt.startswith(ORACLE_PROMPT):
                return ""
            try:
                request = json.loads(prompt[len(ORACLE_PROMPT):])
            except ValueError:
                return json.dumps({"unavailable": "unreadable request"})
            return json.dumps(answer(self.assignment, allowed, request))

        return reply
