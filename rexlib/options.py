"""Options stated once: a dataclass field carries its default, help and choices, and the command-line
flags are made from the fields, so a flag, its default and the library's default cannot drift apart.

    epochs: int = option(2, "passes over the training split")          ->  --epochs N (default: 2)
    structure_gate: bool = option(True, "...")                          ->  --no-structure-gate
    length_buckets: bool = option(False, "...")                         ->  --length-buckets
    data: str = option(help="...")   (no default)                       ->  --data DATA (required)

A field named ``some_name`` becomes ``--some-name``; a boolean that defaults to True becomes
``--no-some-name``. ``flag_values(cls, args)`` reads the parsed flags back into keyword arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence


def option(default=dataclasses.MISSING, help: str = "", *, choices: Sequence | None = None,
           default_factory=dataclasses.MISSING, **metadata):
    """A dataclass field with its help text (and, optionally, the values it may take)."""
    metadata = {"help": help, **metadata}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def help_of(cls, name: str) -> str:
    return _field(cls, name).metadata.get("help", "")


def choices_of(cls, name: str) -> tuple | None:
    return _field(cls, name).metadata.get("choices")


def default_of(cls, name: str):
    found = _field(cls, name)
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


def check_choices(instance) -> None:
    """Raise a ValueError naming the field when a value lies outside its field's choices."""
    for found in dataclasses.fields(instance):
        allowed = found.metadata.get("choices")
        value = getattr(instance, found.name)
        if allowed is not None and value not in allowed:
            raise ValueError(f"{type(instance).__name__}.{found.name} must be one of {list(allowed)}, got {value!r}")


def flag_name(name: str, default=None) -> str:
    """The command-line spelling of a field: ``--some-name``, or ``--no-some-name`` for a boolean that
    defaults to True."""
    stem = name.replace("_", "-")
    return f"--no-{stem}" if default is True else f"--{stem}"


def add_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field of the dataclass ``cls``, with the field's default, type, choices and help."""
    hints = typing.get_type_hints(cls)
    for found in dataclasses.fields(cls):
        # argparse %-formats help strings, so a literal "9%" must reach it as "9%%"
        help_text = found.metadata.get("help", "").replace("%", "%%")
        kind = _scalar_type(hints[found.name], cls, found.name)
        if found.default is dataclasses.MISSING and found.default_factory is dataclasses.MISSING:
            parser.add_argument(flag_name(found.name), dest=found.name, type=kind, required=True, help=help_text)
            continue
        default = default_of(cls, found.name)
        if kind is bool:
            action = "store_false" if default else "store_true"
            parser.add_argument(flag_name(found.name, default), dest=found.name, action=action, default=default,
                                help=f"{help_text} ({'on by default; this flag turns it off' if default else 'off by default'})")
            continue
        parser.add_argument(flag_name(found.name), dest=found.name, type=kind, default=default,
                            choices=found.metadata.get("choices"), help=f"{help_text} (default: {default})")


def flag_values(cls, args: argparse.Namespace) -> dict:
    """The parsed flags of ``add_flags(parser, cls)`` as keyword arguments of ``cls``."""
    return {found.name: getattr(args, found.name) for found in dataclasses.fields(cls)}


def _field(cls, name: str) -> dataclasses.Field:
    for found in dataclasses.fields(cls):
        if found.name == name:
            return found
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _scalar_type(hint, cls, name: str) -> type:
    """``int``, ``float``, ``str`` or ``bool`` from a field's type (``X | None`` counts as ``X``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        if len(members) == 1:
            hint = members[0]
    if hint in (int, float, str, bool):
        return hint
    raise TypeError(f"{cls.__name__}.{name}: a flag needs an int, float, str or bool field, not {hint}")
