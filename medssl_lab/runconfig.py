"""A run described by a file: the ``config.yaml`` of every run folder, written atomically and read back checked.

A pretraining run folder (``pretrain``) and a reproduction folder (``reproduce``) hold every setting of their run in
``config.yaml``: the fields of the run's settings dataclass, nested sections (``data``: where the pool came from) and
nothing else. ``medssl-lab pretrain --config FILE`` (or ``reproduce --config FILE``) runs it again; flags and
``--set KEY=VALUE`` (dotted keys into sections) vary it. Precedence: profile defaults < file < flags < ``--set``.

Every key is checked against the dataclass's fields and every value against the field's type, so a typo or a wrong
value is a :class:`~medssl_lab.errors.ConfigError` naming the file, the key and what fits, before any work starts.
Values are YAML as YAML 1.2 reads it: only ``true``/``false`` are booleans (``amp: off`` is the string ``"off"``),
and ``1e-3`` is a number.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from medssl_lab import __version__
from medssl_lab.errors import ConfigError
from medssl_lab.files import atomic_file

CONFIG_NAME = "config.yaml"

_BOOL = "tag:yaml.org,2002:bool"
_FLOAT = "tag:yaml.org,2002:float"
_EXPONENT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")  # 1e-3: a float in YAML 1.2, a string in PyYAML's 1.1


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans (true/false only) and exponent floats (1e-3)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_FLOAT, _EXPONENT, list("-+0123456789"))


class _Dumper(yaml.SafeDumper):
    """Quotes every string that YAML 1.1 or 1.2 would read as something else; lists on one line."""


_Dumper.add_implicit_resolver(_FLOAT, _EXPONENT, list("-+0123456789"))


def _flow_list(dumper: yaml.SafeDumper, items: list | tuple) -> Any:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(items), flow_style=True)


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(tuple, _flow_list)


@dataclass(frozen=True)
class Section:
    """The keys a mapping of a settings file may hold: the fields of ``cls`` but ``exclude``, and ``sections``.

    A section named like a field (``augment``) checks that field's mapping against another dataclass; one named
    otherwise (``data``) is a key of its own.
    """

    cls: type
    sections: Mapping[str, Section] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    note: str = ""  # said after an unknown key of this section

    def keys(self) -> list[str]:
        names = [f.name for f in dataclasses.fields(self.cls) if f.name not in self.exclude]
        return names + [name for name in self.sections if name not in names]


@dataclass
class DataSettings:
    """Where a run's pool comes from, as the command line took it: ``sources`` (None: the default pool),
    ``data_dir`` (this machine's folder; None: ``$MEDSSL_DATA_DIR``), ``synthetic`` phantoms instead."""

    sources: tuple[str, ...] | None = None
    data_dir: str | None = None
    synthetic: bool = False


def to_yaml(values: Mapping[str, Any], header: str = "") -> str:
    """``values`` as YAML, keys in their order, each line of ``header`` as a comment above them."""
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + yaml.dump(dict(values), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_config(path: str | os.PathLike, values: Mapping[str, Any], header: str = "") -> Path:
    """Write ``values`` as YAML to ``path`` atomically (a reader sees the old file or the new one, never half)."""
    text = to_yaml(values, header)  # before the file is touched: values YAML cannot hold write nothing
    with atomic_file(path, permissions=0o644) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_run_config(
    folder: str | os.PathLike, command: str, settings: Mapping[str, Any], data: Mapping[str, Any] | None
) -> Path:
    """``folder/config.yaml``: the ``settings`` of a run of ``medssl-lab COMMAND`` and its ``data`` section (None:
    not recorded), under a comment that says how to repeat and vary it."""
    lines = [
        f"Every setting of this run (medssl-lab {__version__}). Repeat it into another folder:",
        f"  medssl-lab {command} --config THIS_FILE --out OTHER_FOLDER",
        "Flags and --set KEY=VALUE override this file (--set lr=0.3, --set data.data_dir=/my/data).",
    ]
    if data is None:
        lines.append("No data section: the pool was given in Python; --source, --data-dir or --synthetic choose one.")
    else:
        lines.append("data.data_dir is this machine's folder (null: $MEDSSL_DATA_DIR): --data-dir replaces it.")
        settings = {**settings, "data": dict(data)}
    return write_config(Path(folder) / CONFIG_NAME, settings, "\n".join(lines))


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a settings file holds, unchecked; a ConfigError names a file that is missing, not YAML or no
    mapping. An empty file sets nothing."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such settings file (give a run folder's config.yaml)") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable YAML settings file ({exc.__class__.__name__})") from None
    try:
        values = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not a YAML file: {' '.join(str(exc).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: holds a {type(values).__name__}, not a mapping of settings (key: value lines)")
    return values


def check(values: Mapping[str, Any], section: Section, where: str, prefix: str = "") -> dict[str, Any]:
    """``values`` with every key checked against ``section`` and every value against its field's type (lists become
    the tuples a field holds, ints the floats); a ConfigError names ``where``, the key and what fits."""
    hints = get_type_hints(section.cls)
    allowed = section.keys()
    checked: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in allowed:
            raise ConfigError(_unknown_key(where, name, str(key), allowed, prefix, section.note))
        if key in section.sections:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {name} expects a mapping (key: value lines), got {_shown(value)}")
            checked[key] = check(value, section.sections[key], where, f"{name}.")
            continue
        try:
            checked[key] = _convert(value, hints[key])
        except _Mismatch:
            raise ConfigError(f"{where}: {name} expects {_describe(hints[key])}, got {_shown(value)}") from None
    return checked


def _unknown_key(where: str, name: str, key: str, allowed: list[str], prefix: str, note: str) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"the keys here are {', '.join(allowed)}"
    return f"{where}: unknown key {name}; {hint}" + (f" ({note})" if note else "")


def parse_assignment(pair: str) -> dict[str, Any]:
    """``"lr=0.3"`` -> ``{"lr": 0.3}``, ``"data.sources=[mednist]"`` -> ``{"data": {"sources": ["mednist"]}}``: the
    value read as YAML (a scalar or a flow list), dotted keys into sections."""
    key, sep, text = pair.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.isidentifier() for part in parts):
        raise ConfigError(f"--set {pair}: want KEY=VALUE, e.g. --set lr=0.3 or --set data.data_dir=/data")
    try:
        value = yaml.load(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {pair}: the value is not YAML: {' '.join(str(exc).split())}") from None
    for part in reversed(parts[1:]):
        value = {part: value}
    return {parts[0]: value}


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top``'s values over it; mappings in both are merged key by key."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = merge(merged[key], value)
        merged[key] = value
    return merged


def resolve(
    section: Section, path: str | os.PathLike | None, flags: Mapping[str, Any], assignments: list[str]
) -> dict[str, Any]:
    """The settings of a run: the file at ``path`` (if any) < ``flags`` (the command line's options that were given;
    None values are left out) < each of ``assignments`` (``--set KEY=VALUE``), every one checked against
    ``section``. Keys no layer sets are absent: the profile's defaults fill them."""
    settings = check(read_config(path), section, str(path)) if path is not None else {}
    settings = merge(settings, check(_given(flags), section, "the command line"))
    for pair in assignments:
        settings = merge(settings, check(parse_assignment(pair), section, f"--set {pair}"))
    return settings


def _given(flags: Mapping[str, Any]) -> dict[str, Any]:
    """``flags`` without the options left out (None), nested mappings included, and without emptied mappings."""
    given: dict[str, Any] = {}
    for key, value in flags.items():
        if isinstance(value, Mapping):
            value = _given(value) or None
        if value is not None:
            given[key] = value
    return given


class _Mismatch(Exception):
    """A value that does not fit a type (turned into a ConfigError naming the key by :func:`check`)."""


def _convert(value: Any, kind: Any) -> Any:
    """``value`` as a field of type ``kind`` holds it, or _Mismatch."""
    origin, args = get_origin(kind), get_args(kind)
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            try:
                return _convert(value, arg)
            except _Mismatch:
                pass
        raise _Mismatch
    if kind in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
        if kind is int and not isinstance(value, int):
            raise _Mismatch
        return kind(value)
    if kind in (bool, str, type(None)) and isinstance(value, kind):
        return value
    if origin is tuple and isinstance(value, list | tuple):
        if args[-1] is Ellipsis:
            return tuple(_convert(item, args[0]) for item in value)
        if len(value) == len(args):
            return tuple(_convert(item, arg) for item, arg in zip(value, args))
    if origin is dict and isinstance(value, Mapping):
        return {_convert(k, args[0]): _convert(v, args[1]) for k, v in value.items()}
    if origin is list and isinstance(value, list | tuple):
        return [_convert(item, args[0]) for item in value]
    raise _Mismatch


def _describe(kind: Any) -> str:
    """A type as the error messages say it: ``int``, ``float or null``, ``a list of int``."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin in (tuple, list):
        if origin is list or args[-1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} ({', '.join(_describe(arg) for arg in args)})"
    if origin is dict:
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}"
    names = {int: "int (a whole number)", float: "float", str: "str", bool: "bool (true or false)", type(None): "null"}
    return names.get(kind, "anything" if kind is Any else str(kind))


def _shown(value: Any) -> str:
    return f"{value!r} ({'null' if value is None else type(value).__name__})"
