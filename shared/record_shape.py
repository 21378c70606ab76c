"""The shape of each of tagship's records, checked when it is read (pure).

A record of the right name but the wrong shape (valid JSON, wrong types or fields) is refused here with what is
wrong, so nothing downstream acts on half a record: `parse_release`, `parse_pointer`, `parse_lease` and
`parse_queue` return the record's type or raise `CorruptRecord` naming the object. Unknown fields are ignored (a
newer tagship may add some); missing optional fields take their defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from shared.errors import CorruptRecord

Check = Callable[[Any], bool]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _map_of(check: Check) -> Check:
    return lambda value: isinstance(value, dict) and all(isinstance(k, str) and check(v) for k, v in value.items())


def _pair(first: Check, second: Check) -> Check:
    return lambda value: isinstance(value, list) and len(value) == 2 and first(value[0]) and second(value[1])


def _anything(value: Any) -> bool:
    return True


RELEASE_FIELDS: dict[str, Check] = {
    "tag": _text, "commit": _text, "pushed_by": _text, "delivery_id": _text, "state": _text,
    "history": _list_of(_pair(_text, _number)), "build_id": _text, "log_url": _text, "image": _text,
    "waiting": _flag, "migration_started_at": _optional(_number), "migration_execution": _text,
    "previous": _map_of(_optional(_text)), "revisions": _map_of(_text), "traffic_moved": _list_of(_text),
    "frontend_objects": _map_of(_text), "frontend_published": _flag, "slack_channel": _text, "slack_ts": _text,
    "error": _text, "steps": _map_of(_map_of(_number)), "attempt": _count,
    "canary": _map_of(_anything),  # its shape inside is shared.canary_record's to check
    "approval": _map_of(_anything),  # its shape inside is shared.core.approval's to check
    "github_deployment": _optional(_count), "github_status": _text,
}
RELEASE_REQUIRED = ("tag", "commit", "pushed_by", "delivery_id", "state", "history")
POINTER_FIELDS: dict[str, Check] = {
    "live": _optional(_text), "previous": _optional(_text), "timeline": _list_of(_pair(_text, _number)),
    "changed_at": _number,
}
LEASE_FIELDS: dict[str, Check] = {"tag": _text, "owner": _text, "expires": _number}
QUEUE_FIELDS: dict[str, Check] = {"waiting": _optional(_text)}


@dataclass(frozen=True)
class Unreadable:
    """What a record store reads where an object's bytes are not JSON: kept as a value, not raised, so every
    reader meets it where it checks the shape (a lease or queue then holds nothing and the next write replaces it;
    a release or the pointer is refused as corrupt, and the CLI shows and mends it)."""

    excerpt: str  # the first bytes, as repr


def check_shape(name: str, data: Any, fields: dict[str, Check], required: tuple[str, ...] = (),
                generation: int = 0) -> dict[str, Any]:
    """`data` with only the known fields, each of its type; CorruptRecord naming the first field that is not."""
    if isinstance(data, Unreadable):
        raise CorruptRecord(name, f"not JSON: {data.excerpt}", generation)
    if not isinstance(data, dict):
        raise CorruptRecord(name, f"expected a JSON object, found {type(data).__name__}", generation)
    for key in required:
        if key not in data:
            raise CorruptRecord(name, f"required field {key!r} is missing", generation)
    for key, check in fields.items():
        if key in data and not check(data[key]):
            raise CorruptRecord(name, f"field {key!r} has the wrong type: {_describe(data[key])}", generation)
    return {key: value for key, value in data.items() if key in fields}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
