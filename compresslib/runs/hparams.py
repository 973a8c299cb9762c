"""Typed run profiles: a dataclass whose fields carry their help, building both the CLI and the recorded config.

A run declares its settings once::

    @dataclass(frozen=True)
    class TicketsProfile(Profile):
        lr: float = option(2e-4, "peak learning rate of AdamW (linear warm-up and decay)")
        seeds: tuple[int, ...] = option((0, 1, 2), "one fine-tuning per seed; claims pair arms by seed")

    PROFILES = {"quick": TicketsProfile(name="quick", ...), "cpu": ..., "gpu": ...}

:func:`add_arguments` turns every field into a ``--field-name`` option (help text, type and each
profile's value shown in ``--help``), :func:`from_arguments` applies what the command line changed,
and :meth:`Profile.config` is what ``results.json`` records. (The pattern of open_lth's
``foundations/hparams.py``, with the help in the field's metadata rather than in a ``_field`` twin.)
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace


def option(default, help: str, *, cli: bool = True):
    """A profile field with its ``default`` and ``help``; ``cli=False`` keeps it off the command line."""
    if not help:
        raise ValueError("every profile field needs a help text")
    return field(default=default, metadata={"help": help, "cli": cli})


@dataclass(frozen=True)
class Profile:
    """Base of every run's profile. ``name`` is the profile's word (``quick | cpu | gpu``) and its folder."""

    name: str = option("quick", "the profile's name, and its folder under the run's folder", cli=False)
    notes: tuple[str, ...] = option((), "what was cut to fit the budget, for the report", cli=False)

    def config(self) -> dict:
        """The profile as plain JSON (tuples become lists): what ``results.json`` records and caches compare."""
        return json.loads(json.dumps({f.name: getattr(self, f.name) for f in fields(self)}))

    @classmethod
    def help(cls) -> dict[str, str]:
        """``{field: help}`` for every field."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _optional_int(text: str):
    return None if text.lower() in ("all", "none") else int(text)


def _optional_float(text: str):
    return None if text.lower() == "none" else float(text)


def _argument_spec(annotation) -> dict:
    """``add_argument`` keywords for a field of type ``annotation``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if annotation in (int, float, str):
        return {"type": annotation}
    if origin in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        inner = next(a for a in args if a is not type(None))
        if inner is int:
            return {"type": _optional_int, "metavar": "N|all"}
        if inner is float:
            return {"type": _optional_float, "metavar": "X|none"}
        if inner is str:
            return {"type": str}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str):
        return {"type": args[0], "nargs": "+"}
    raise TypeError(f"profile fields must be bool, int, float, str, optional int/float/str or tuple[T, ...]; "
                    f"got {annotation!r}")


def add_arguments(parser: argparse.ArgumentParser, profiles: Mapping[str, Profile]) -> None:
    """One ``--field-name`` option per CLI field of the profiles' class, defaulting to "the profile's value"."""
    classes = {type(p) for p in profiles.values()}
    if len(classes) != 1:
        raise ValueError(f"the profiles of one run must share one class, got {sorted(c.__name__ for c in classes)}")
    cls = classes.pop()
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} (each defaults to the chosen profile's value)")
    for f in fields(cls):
        if not f.metadata.get("cli", True):
            continue
        values = ", ".join(f"{name}: {_shown(getattr(p, f.name))}" for name, p in profiles.items())
        text = f"{f.metadata['help']} [{values}]".replace("%", "%%")  # argparse %-formats help texts
        group.add_argument(_flag(f.name), dest=f.name, default=argparse.SUPPRESS, help=text,
                           **_argument_spec(hints[f.name]))


def _shown(value) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return "all" if value is None else str(value)


def overrides(args: argparse.Namespace, profile: Profile) -> dict:
    """The fields the command line set to a value other than ``profile``'s (an option not given is absent)."""
    changed = {}
    for f in fields(profile):
        if not f.metadata.get("cli", True) or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        value = tuple(value) if isinstance(value, list) else value
        if value != getattr(profile, f.name):
            changed[f.name] = value
    return changed


def from_arguments(args: argparse.Namespace, profile: Profile) -> Profile:
    """``profile`` with the command line's changes. A changed profile is renamed ``<name>+<field>=<value>...``,
    so its files never mix with (or overwrite) those of the profile it started from."""
    changed = overrides(args, profile)
    if not changed:
        return profile
    suffix = "+".join(f"{k}={_shown(v).replace(' ', ',')}" for k, v in sorted(changed.items()))
    return replace(profile, name=f"{profile.name}+{suffix}", **changed)


def check_profiles(profiles: Mapping[str, Profile]) -> None:
    """Each profile is stored under its own name, and every field has a default (so a profile is complete)."""
    for key, profile in profiles.items():
        if key != profile.name:
            raise ValueError(f"profile {key!r} is named {profile.name!r}; the key and the name must agree")
    for f in fields(next(iter(profiles.values()))):
        if f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(f"profile field {f.name!r} has no default")
