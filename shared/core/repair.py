"""What a corrupt record is mended to (pure): the least that lets tagship go on, never a guess that moves traffic.

- `lease.json`: free. `queue.json`: empty. `gates.json`: not paused, nothing held (pause again by hand if wanted). `watchdog.json`: a fresh memory (counters start again).
- `releases/TAG.json`: the release ended `failed`, saying it was mended; every field that still has its type is
  kept (so its commit, its revisions and its thread survive), the rest take their defaults.
- `pointer.json`: rebuilt from the release records: the timeline is the order they went live in, live is the
  newest release still live, previous the newest before it that was not rolled back.
"""
from __future__ import annotations

from typing import Any

from shared.errors import InputError
from shared.record_shape import RELEASE_FIELDS
from shared.release import FAILED, LIVE, ROLLED_BACK, Release

FIXED: dict[str, dict[str, Any]] = {"lease.json": {"tag": "", "owner": "", "expires": 0}, "queue.json": {"waiting": None},
                                    "gates.json": {"paused": None, "held": None}}


def repaired(name: str, data: Any, releases: list[Release], now: float, by: str) -> dict[str, Any]:
    """The record `name` mended from its corrupt `data`; InputError for a name tagship does not keep."""
    if name in FIXED:
        return dict(FIXED[name])
    if name == "watchdog.json":
        from shared.core.watchdog import WatchdogState

        return WatchdogState().to_dict()
    if name == "pointer.json":
        return pointer_from(releases)
    if name.startswith("releases/") and name.endswith(".json"):
        return release_from(name[len("releases/"):-len(".json")], data, now, by)
    raise InputError(f"{name[:120]}: not a record tagship keeps (lease.json, queue.json, watchdog.json, "
                     "gates.json, pointer.json, releases/TAG.json)")


def release_from(tag: str, data: Any, now: float, by: str) -> dict[str, Any]:
    kept = {}
    if isinstance(data, dict):
        for key, check in RELEASE_FIELDS.items():
            if key in data and check(data[key]):
                kept[key] = data[key]
    history = [list(item) for item in kept.get("history", [])]
    release = {**kept, "tag": tag, "commit": kept.get("commit", ""), "pushed_by": kept.get("pushed_by", ""),
               "delivery_id": kept.get("delivery_id", ""), "state": FAILED,
               "history": [*history, [FAILED, now]], "waiting": False,
               "error": f"corrupt record mended by {by[:80]}; this release goes no further (push a new tag)"}
    return Release.from_dict(release, f"releases/{tag}.json").to_dict()


def pointer_from(releases: list[Release]) -> dict[str, Any]:
    went_live = sorted((r for r in releases if r.at(LIVE) is not None), key=lambda r: r.at(LIVE) or 0.0)
    timeline: list[list[Any]] = [[r.tag, r.at(LIVE) or 0.0] for r in went_live]
    serving = [r for r in went_live if r.state == LIVE]
    live = serving[-1].tag if serving else None
    before = [r for r in went_live if r.tag != live and r.state != ROLLED_BACK]
    previous = before[-1].tag if before and live else None
    changed = max((float(at) for _, at in timeline), default=0.0)
    return {"live": live, "previous": previous, "timeline": timeline, "changed_at": changed}
