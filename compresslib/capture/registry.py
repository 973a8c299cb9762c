"""Functions registered per assignment and name, their modules imported on first lookup.

The capture harnesses (shipped to students), the judges and the oracles (instructor kit only) are each
one :class:`Registry`: a notebook's module registers its functions with a decorator, and a lookup
imports that module the first time an assignment is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class Registry:
    """``(assignment, name) -> function``, filled by ``@registry.register(assignment, name)``."""

    def __init__(self, what: str, modules: Mapping[str, str]):
        self.what, self.modules = what, dict(modules)
        self._functions: dict[tuple[str, str], Callable] = {}

    def register(self, assignment: str, name: str) -> Callable[[F], F]:
        def add(function: F) -> F:
            self._functions[(assignment, name)] = function
            return function

        return add

    def find(self, assignment: str, name: str) -> Callable | None:
        """The registered function, or None (importing the assignment's module on first use)."""
        if (assignment, name) not in self._functions and assignment in self.modules:
            importlib.import_module(self.modules[assignment])
        return self._functions.get((assignment, name))

    def get(self, assignment: str, name: str) -> Callable:
        function = self.find(assignment, name)
        if function is None:
            raise KeyError(f"no {self.what} for {assignment}/{name}")
        return function
