"""The oracle: correct results of earlier graded functions, computed in the trusted process for the
stand-ins of a dependent test (:mod:`compresslib.capture.stand_ins`).

Each oracle function takes the call's decoded arguments (NumPy arrays, dicts of arrays, a model's
state as a dict, numbers) and returns a reply: ``{"result": ...}`` in the input format, optionally
``"jacobian_wrt"`` and ``"jacobian"`` (d result / d argument, flattened, for gradients to flow),
``"updates"`` (an argument's tensors after an in-place call) and ``"result_argument"`` (the call
returns that argument). It is answered only for the functions in the dependent test's scope: the
``stand_ins`` its hidden inputs declare, and only in a test cell that comes after every earlier test
cell (so a function's answers never reach the kernel before its own test has run).

Requests come from the student's kernel, so they are untrusted and bounded: at most
:data:`MAX_REQUEST_NUMBERS` numbers in the arguments, and an oracle whose reply grows faster than its
request (a dense Jacobian) refuses sizes above :data:`MAX_REPLY_NUMBERS` with :class:`OracleRefused`.
Whatever a request does, the reply is data: the oracle never raises into the grader.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import numpy as np

from compresslib.capture.registry import Registry
from compresslib.grading.judging import JUDGE_MODULES

Oracle = Callable[[Mapping], dict]
ORACLES = Registry("oracle", JUDGE_MODULES)  # the oracles live beside the judges
oracle = ORACLES.register
"""``@oracle(assignment, function)`` registers the oracle of one earlier graded function."""
# The largest stand-in call the hidden tests make has 264 numbers (01's kd_step); a request is refused
# well before it could cost the grader's worker real memory or time (a dense softmax Jacobian of a
# 15,000-logit request, 60 kB of JSON, would need about 25 GB).
MAX_REQUEST_NUMBERS = 100_000
MAX_REPLY_NUMBERS = 1_000_000


class OracleRefused(Exception):
    """A request the oracle will not answer (too large); the stand-in falls back to the student's own function."""


def require_reply_size(numbers: int, what: str) -> None:
    """Refuse a reply of more than :data:`MAX_REPLY_NUMBERS` numbers (call before computing it)."""
    if numbers > MAX_REPLY_NUMBERS:
        raise OracleRefused(f"{what} would hold {numbers} numbers (at most {MAX_REPLY_NUMBERS})")


def _numbers(value, limit: int) -> int:
    """How many numbers a request's JSON arguments hold, counting up to ``limit + 1`` (iteratively: a
    deeply nested request cannot exhaust the recursion limit)."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool | int | float):
            count += 1
    return count


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
    if _numbers(request["args"], MAX_REQUEST_NUMBERS) > MAX_REQUEST_NUMBERS:
        return {"unavailable": f"request too large (more than {MAX_REQUEST_NUMBERS} numbers)"}
    try:
        arguments = {name: decode(value) for name, value in request["args"].items()}
    except (TypeError, ValueError, RecursionError) as error:
        return {"unavailable": f"unreadable arguments ({type(error).__name__})"}
    try:
        return compute(arguments)
    except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as error:
        return {"raised": f"{type(error).__name__}: {error}"[:500]}
    except OracleRefused as error:
        return {"unavailable": str(error)[:500]}
    except Exception as error:  # noqa: BLE001 - e.g. MemoryError: the request is refused, grading goes on
        return {"unavailable": f"the oracle could not answer ({type(error).__name__})"}


class StandInOracle:
    """The executor's side of the stand-ins: for each hidden test cell whose inputs declare stand-ins,
    a stdin handler that answers their requests (any other prompt, e.g. a student's ``input()``, gets
    an empty line).

    ``scopes`` is in the notebook's order of tests (the fixture's order). A test cell gets its handler
    only when every test before it in that order has a cell earlier in the submission: a submission
    that moves a dependent test's cell up (say ``test_combined_loss`` above ``test_distillation_loss``)
    would otherwise collect the correct answers of an earlier function on that function's hidden inputs
    before its own test runs, and return them there."""

    def __init__(self, assignment: str, scopes: Mapping[str, set[str]]):
        self.assignment, self.scopes = assignment, dict(scopes)
        self.order = list(self.scopes)

    @classmethod
    def from_inputs(cls, assignment: str, inputs_path) -> StandInOracle:
        """Scopes read from the hidden inputs file: ``{test: {functions its stand-ins may ask for}}``."""
        import json
        from pathlib import Path

        inputs = json.loads(Path(inputs_path).read_text())
        return cls(assignment, {test: scope([case.get("stand_ins", {}) for case in spec.get("cases", [])])
                                for test, spec in inputs.items()})

    def handler(self, grade_id: str | None, earlier: Collection[str] = ()):
        """The stdin handler of the test cell ``grade_id``, or None. ``earlier``: the grade ids of the
        cells before it in the submission."""
        allowed = self.scopes.get(grade_id or "")
        if not allowed:
            return None
        if any(test not in earlier for test in self.order[:self.order.index(grade_id)]):
            return None

        def reply(prompt: str) -> str:
            import json

            from compresslib.capture.stand_ins import ORACLE_PROMPT

            if not prompt.startswith(ORACLE_PROMPT):
                return ""
            try:
                request = json.loads(prompt[len(ORACLE_PROMPT):])
            except (ValueError, RecursionError):
                return json.dumps({"unavailable": "unreadable request"})
            return json.dumps(answer(self.assignment, allowed, request))

        return reply
