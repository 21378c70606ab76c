"""Writes a tagship Config back to TOML, so the local cloud hands the functions a real config file."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from shared.config import Config


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def to_toml(config: Config) -> str:
    lines: list[str] = []
    for section in dataclasses.fields(config):
        lines.append(f"[{section.name}]")
        for key, value in dataclasses.asdict(getattr(config, section.name)).items():
            lines.append(f"{key} = {_value(value)}")
        lines.append("")
    return "\n".join(lines)
