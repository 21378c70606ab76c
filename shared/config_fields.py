"""How one config value is read against its field: its type from the annotation, its checks from the field's
metadata (`minimum`, `maximum`, `pattern`, `regex`, `nonempty`, `above`, for lists of strings `item_pattern`, and for
lists of integers `item_minimum`, `item_maximum`, `increasing`). Every error names the key, what was expected and what was found."""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any

from shared.errors import ConfigError


def _describe(value: Any) -> str:
    kind = type(value).__name__
    text = repr(value)
    return f"{kind} {text if len(text) < 60 else text[:57] + '...'}"


def _integers(key: str, value: Any, metadata: dict[str, Any]) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        raise ConfigError(f"{key}: expected a list of integers, found {_describe(value)}")
    for index, item in enumerate(value):
        if "item_minimum" in metadata and item < metadata["item_minimum"]:
            raise ConfigError(f"{key}[{index}]: expected at least {metadata['item_minimum']}, found {item}")
        if "item_maximum" in metadata and item > metadata["item_maximum"]:
            raise ConfigError(f"{key}[{index}]: expected at most {metadata['item_maximum']}, found {item}")
        if metadata.get("increasing") and index and item <= value[index - 1]:
            raise ConfigError(f"{key}[{index}]: expected more than {value[index - 1]} (the list strictly increasing), "
                              f"found {item}")
    return tuple(value)


def _convert(key: str, value: Any, annotation: Any, metadata: dict[str, Any]) -> Any:
    origin = typing.get_origin(annotation)
    if origin is tuple and typing.get_args(annotation)[0] is int:
        return _integers(key, value, metadata)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of strings, found {_describe(value)}")
        if metadata.get("nonempty") and not value:
            raise ConfigError(f"{key}: expected a non-empty list, found an empty one")
        for item in value:
            if "item_pattern" in metadata and not re.match(metadata["item_pattern"], item):
                raise ConfigError(f"{key}: expected each item to match {metadata['item_pattern']}, found {item[:80]!r}")
        return tuple(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, found {_describe(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, found {_describe(value)}")
    elif annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, found {_describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, found {value}")
        value = float(value)
    elif annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, found {_describe(value)}")
        if "pattern" in metadata and not re.match(metadata["pattern"], value):
            raise ConfigError(f"{key}: expected a value matching {metadata['pattern']}, found {value!r}")
        if metadata.get("regex"):
            try:
                re.compile(value)
            except re.error as error:
                raise ConfigError(f"{key}: expected a regular expression, found {value!r} ({error})") from error
    if "minimum" in metadata and value < metadata["minimum"]:
        raise ConfigError(f"{key}: expected at least {metadata['minimum']}, found {value}")
    if "maximum" in metadata and value > metadata["maximum"]:
        raise ConfigError(f"{key}: expected at most {metadata['maximum']}, found {value}")
    return value


def section(name: str, cls: type, raw: Any) -> Any:
    """The table `raw` read into the dataclass `cls` (the section `name`), key by key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a table [{name}], found {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(known))}")
    values = {}
    for f in dataclasses.fields(cls):
        key = f"{name}.{f.name}"
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required key is missing ({f.metadata.get('doc', '')})")
            continue
        values[f.name] = _convert(key, raw[f.name], hints[f.name], dict(f.metadata))
        if isinstance(values[f.name], str) and not values[f.name].strip() and f.default != "":
            # an empty value where one is needed (an empty tag pattern would match every tag)
            raise ConfigError(f"{key}: expected a value, found an empty string ({f.metadata.get('doc', '')})")
    built = cls(**values)
    for f in dataclasses.fields(cls):
        other = f.metadata.get("above")
        if other is not None and getattr(built, f.name) <= getattr(built, other):
            raise ConfigError(f"{name}.{f.name}: expected more than {name}.{other} ({getattr(built, other)}), "
                              f"found {getattr(built, f.name)}")
    return built
