"""Traffic targets: which revision serves a service now, and the targets that move it (pure).

As cloud-run-release-manager's `traffic.go` returns targets for `rollout.go` to apply, these return the whole
list of targets a move writes; the Cloud Run adapter writes exactly that list.
"""
from __future__ import annotations

from collections.abc import Mapping

from shared.ports import TrafficTarget


def serving(traffic: Mapping[str, int], latest_ready: str) -> str:
    """The revision that serves most of the traffic (ties: the greatest name, so the answer never depends on the
    order Cloud Run listed them); with no traffic recorded, the latest ready revision."""
    if not traffic:
        return latest_ready
    return max(traffic, key=lambda revision: (traffic[revision], revision))


def all_to(revision: str, tag: str = "") -> list[TrafficTarget]:
    """Every request to `revision` (promote, restore, rollback): one target, optionally keeping its traffic tag."""
    if not revision:
        raise ValueError("a traffic move needs a revision")
    return [TrafficTarget(revision, 100, tag)]



def split(candidate: str, stable: str, candidate_percent: int, *, candidate_tag: str = "",
          stable_tag: str = "") -> list[TrafficTarget]:
    """A canary step: `candidate_percent` of the requests to `candidate`, the rest to `stable`, each keeping its
    traffic tag (a target written without its tag drops the tag's URL, and the candidate's probes need it)."""
    if not candidate or not stable or candidate == stable:
        raise ValueError(f"a split needs two revisions, found {candidate!r} and {stable!r}")
    if not 1 <= candidate_percent <= 99:
        raise ValueError(f"a split gives the candidate 1 to 99 percent, found {candidate_percent}")
    return [TrafficTarget(candidate, candidate_percent, candidate_tag),
            TrafficTarget(stable, 100 - candidate_percent, stable_tag)]
