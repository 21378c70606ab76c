"""Who deploys next, decided once (pure).

- The newest waiting release wins the queue (an older one arriving later is superseded: `wait_in_queue`).
- A release never starts deploying over a newer one that already went live: it is superseded instead, so a stale
  attempt finishing late can never drive an older release live over a newer one.
- Expiry is noticed by whoever waits: each scheduler tick asks `nudges` whether a lease has expired with work
  behind it, and drives that work, so a release waiting behind an attempt that died does not wait for a new tag.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LeaseView:
    tag: str
    expires: float
    holder_in_flight: bool  # the holding release has not ended (it may be resumed)


def superseded_by_live(created_at: float, live_created_at: float | None) -> bool:
    """Whether a release pushed at `created_at` must not deploy because the live release was pushed after it."""
    return live_created_at is not None and live_created_at > created_at


def nudges(lease: LeaseView | None, waiting: str | None, now: float) -> list[str]:
    """The releases a tick drives: none while a lease is current; after it expired, the holder when it is still in
    flight (it resumes from its record, or finds it lost its turn), else the waiting release."""
    if lease is not None and lease.tag and lease.expires > now:
        return []
    if lease is not None and lease.tag and lease.holder_in_flight and lease.tag != "rollback":
        return [lease.tag]
    return [waiting] if waiting else []
