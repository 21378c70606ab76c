"""Who deploys next, decided once (pure).

- The newest waiting release wins the queue (an older one arriving later is superseded: `wait_in_queue`).
- A release never starts deploying over a newer one that already went live: it is superseded instead, so a stale
  attempt finishing late can never drive an older release live over a newer one.
- Expiry is noticed by whoever waits: each scheduler tick asks `nudges` whether a lease has expired with work
  behind it, and drives that work, so a release waiting behind an attempt that died does not wait for a new tag.
- A deploy lease naming a release that has settled (live, or ended) holds nothing, expired or not: that release
  moves no traffic any more, so its lease can only be one written back stale (a lost update, a backup restored)
  or one its attempt did not live to give back. Waiting for its expiry would strand whatever comes next.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.release import ENDS, LIVE


@dataclass(frozen=True)
class LeaseView:
    tag: str
    expires: float
    holder_in_flight: bool  # the holding release has not ended (it may be resumed)
    holder_settled: bool = False  # the holding release's record says it is live or ended (`holder_settled`)


def holder_settled(holder: str, holder_state: str | None) -> bool:
    """Whether a deploy lease held for `holder`, whose release record says `holder_state` (None: no readable
    record), holds nothing however far its expiry: its release is live or ended and moves no traffic any more.
    A rollback's lease, and a holder whose record cannot be read, hold until their expiry (nothing says they
    are done)."""
    if not holder or holder == "rollback" or holder_state is None:
        return False
    return holder_state == LIVE or holder_state in ENDS


def superseded_by_live(created_at: float, live_created_at: float | None) -> bool:
    """Whether a release pushed at `created_at` must not deploy because the live release was pushed after it."""
    return live_created_at is not None and live_created_at > created_at


def nudges(lease: LeaseView | None, waiting: str | None, now: float) -> list[str]:
    """The releases a tick drives: none while a lease is current; after it expired, the holder when it is still in
    flight (it resumes from its record, or finds it lost its turn), else the waiting release."""
    if lease is not None and lease.tag and lease.expires > now and not lease.holder_settled:
        return []
    if lease is not None and lease.tag and lease.holder_in_flight and lease.tag != "rollback":
        return [lease.tag]
    return [waiting] if waiting else []
