"""Training configs: plain dataclasses, loadable from YAML, overridable with ``key.sub=value`` arguments.

Loading validates every key and type before any work starts; a problem is one :class:`partwise.errors.ConfigError`
line naming the file and the dotted key (``configs/x.yaml: optim.lr: expected a number, got 'fast'``).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from partwise.errors import ConfigError


#: most values a config may hold once YAML aliases are expanded (a few aliases can stand for billions of values)
MAX_VALUES = 100_000
#: integers a config may hold: what a C ``int64`` holds (torch, numpy and the file formats stop there)
INT_LIMIT = 2**63 - 1


def check_range(key: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """:class:`ConfigError` naming ``key`` unless ``value`` is a finite number in ``[low, high]``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f"between {low} and {high}" if low is not None and high is not None
                  else f"at least {low}" if low is not None else f"at most {high}")
        raise ConfigError(f"{key}: expected a value {bounds}, got {value}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked and converted to type ``tp`` (dataclasses built recursively); ``where`` names the key in
    the :class:`ConfigError` of a mismatch."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build(tp, value, where)
    if tp in (list, tuple, dict):  # unparametrised: the generic form's checks
        origin = tp
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > INT_LIMIT:
                raise ConfigError(f"{where}: {value} is out of range (at most {INT_LIMIT} in magnitude)")
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # YAML's .nan / .inf are numbers to the parser, never a meaningful setting
            if abs(value) > 1e308 or not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            if "\0" in value:
                raise ConfigError(f"{where}: NUL character in {value!r}")
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def build(cls: type, values: dict, where: str = "") -> Any:
    """Construct dataclass ``cls`` from a mapping, recursively, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"{key}: unknown key (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = coerce(value, hints[name], key)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        key = f"{where}.{missing[0]}" if where else missing[0]
        raise ConfigError(f"{key}: required key is missing")
    return cls(**kwargs)


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """``["optim.lr=0.1", "data.root=/x"]`` applied to a nested mapping; values are parsed as YAML scalars.
    A problem is one :class:`ConfigError` naming the override."""
    from partwise.data.safe_json import load_yaml_text
    from partwise.errors import InputError

    values = _deep_copy(values)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        target = values
        parts = key.strip().split(".")
        if any(not part for part in parts):
            raise ConfigError(f"override {item!r}: empty key name")
        for depth, part in enumerate(parts[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                where = ".".join(parts[: depth + 1])
                name = type(target).__name__
                kind = "null" if target is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
                raise ConfigError(f"override {item!r}: {where} is {kind} in the config, not a mapping")
        try:
            parsed = load_yaml_text(raw, f"override {key}")
        except InputError as exc:
            if "nested" in exc.problem.reason:
                raise ConfigError(f"override {key}: the value is nested too deeply") from None
            parsed = raw  # not YAML: the plain string
        target[parts[-1]] = _check_size(parsed, f"override {key}")
    return values


def _check_size(value: Any, where: str) -> Any:
    """``value``, unless YAML aliases expand it past :data:`MAX_VALUES` values (``ConfigError``). Shared nodes are
    counted once per reference without being walked again, so the count itself stays cheap."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a cycle counts once (safe_load builds none; a guard costs nothing)
            children = list(node.values()) + list(node.keys()) if isinstance(node, dict) else node
            sizes[id(node)] = 1 + sum(size(child) for child in children)
            if sizes[id(node)] > MAX_VALUES:
                raise ConfigError(f"{where}: more than {MAX_VALUES:,} values once its aliases are expanded")
        return sizes[id(node)]

    size(value)
    return value


def _deep_copy(values: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in values.items()}


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    from partwise.data.safe_json import load_yaml_text
    from partwise.errors import InputError

    try:
        values = load_yaml_text(text, path) or {}
    except InputError as exc:  # invalid YAML or nested too deeply: one line naming the file and line
        raise ConfigError(str(exc)) from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    return _check_size(values, str(path))


def load_config(cls: type, path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> Any:
    """Build ``cls`` from ``base`` values, then the YAML file, then ``overrides``; errors name the file and key."""
    values = dict(base or {})
    if path is not None:
        values.update(load_yaml(path))
    values = apply_overrides(values, overrides or [])
    try:
        return build(cls, values)
    except ConfigError as exc:
        prefix = f"{path}: " if path is not None else ""
        raise ConfigError(f"{prefix}{exc}") from None
