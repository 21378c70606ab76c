"""Which frontend objects to copy, and with what caching (pure).

Hashed assets go first with long immutable caching; `index.html` goes last with `no-cache`, so a browser never
loads an index that points at assets not yet there. Nothing is deleted: pages already open keep loading the
previous release's assets.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

INDEX = "index.html"
BASELINE = "_baseline"  # the frontend that served before tagship's first release, kept under this name
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
SHORT = "public, max-age=300"
_HASHED = re.compile(r"[-.][0-9A-Za-z_]{8,}\.(js|css|mjs|woff2?|png|jpe?g|svg|webp|gif|ico|map)$")


@dataclass(frozen=True)
class PublishPlan:
    assets: tuple[str, ...]  # copied first, in parallel
    pages: tuple[str, ...]  # copied after the assets, index.html last of all
    unchanged: tuple[str, ...]

    @property
    def copies(self) -> tuple[str, ...]:
        return self.assets + self.pages


def release_prefix(releases_prefix: str, identity: str | None) -> str:
    """Where the built frontend of the release `identity` is kept in the state bucket, below `releases_prefix` (the
    baseline's when `identity` is None). `%`, `/` and a leading `_` of the identity are written `%25`, `%2F` and
    `%5F`, so one release's prefix never holds another's files (`v1/` and `v1/2/`) nor is the baseline's (a tag
    `_baseline`); a tag without them (`v1.4.0`, `v1.4.0.attempt-2`) is written as it is."""
    if not identity:
        return f"{releases_prefix}{BASELINE}/"
    part = identity.replace("%", "%25").replace("/", "%2F")
    if part.startswith("_"):
        part = "%5F" + part[1:]
    return f"{releases_prefix}{part}/"


def is_hashed_asset(path: str) -> bool:
    return bool(_HASHED.search(path))


def cache_control(path: str) -> str:
    if path.endswith(".html"):
        return NO_CACHE
    if is_hashed_asset(path):
        return IMMUTABLE
    return SHORT


def plan_publish(source: dict[str, str], live: dict[str, str]) -> PublishPlan:
    """`source` and `live` map object paths to checksums; copy what is new or different."""
    changed = sorted(path for path, checksum in source.items() if live.get(path) != checksum)
    unchanged = tuple(sorted(path for path in source if path not in changed))
    assets = tuple(path for path in changed if is_hashed_asset(path))
    others = [path for path in changed if not is_hashed_asset(path)]
    pages = tuple(sorted(others, key=lambda path: (path == INDEX, path.endswith(".html"), path)))
    return PublishPlan(assets=assets, pages=pages, unchanged=unchanged)
