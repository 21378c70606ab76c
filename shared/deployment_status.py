"""A release's GitHub deployment: made once, its status kept following the release (github.deployments).

Called where the release's Slack root is posted and refreshed (`shared.thread`), so every state change reaches
GitHub from one place. GitHub never blocks a deploy or a rollback: each call is bounded by `github.timeout_seconds`,
nothing here raises, a failure is logged (an error that only an operator can fix once per kind, with what to fix;
others as warnings) and, after one, GitHub is left alone for `COOL_OFF_SECONDS` so a slow GitHub costs one timeout,
not one per step. The next state change posts what the deployment should show by then.

Exactly one deployment per release: its id is kept in the release record (`github_deployment`) with the last status
posted (`github_status`); a record that lost the id finds the deployment again by ref, environment and the payload
marker `{"tagship": <release identity>}` before making one. Each status is recorded (compare-and-swap) before it is
posted, so two invocations following one release at once post it once; their posts may then reach GitHub out of
order, which the next state change puts right.
"""
from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

from shared.core.deployment_status import (
    INACTIVE,
    SUCCESS,
    description,
    github_state,
    marker,
    statuses_to_post,
)
from shared.errors import CorruptRecord, PermanentError, TagshipError
from shared.log import Logger, logger
from shared.release import Release

if TYPE_CHECKING:
    from shared.ports import Deployments
    from shared.wiring import Services

COOL_OFF_SECONDS = 60.0
CLAIM = "claim:"  # github_status while one invocation makes the deployment: its token and when
CLAIM_SECONDS = 60.0


class NoDeploymentStatus:
    """github.deployments off (the default): nothing is made, read or written."""

    def follow(self, release: Release) -> None:
        return None


class DeploymentStatus:
    def __init__(self, services: "Services", deployments: "Deployments") -> None:
        self._s = services
        self._deployments = deployments
        self._told: set[str] = set()
        self._quiet_until = 0.0
        self._lock = threading.Lock()

    def follow(self, release: Release) -> None:
        """Brings the release's deployment to the status its state means (a live release whose deployment GitHub
        made inactive, rolled back to, is a success again). Never raises."""
        log = logger.bind(tag=release.tag)
        if self._s.clock() < self._quiet_until:
            log.info("GitHub deployment status skipped: GitHub failed a moment ago", state=release.state)
            return
        try:
            self._follow(release)
        except CorruptRecord:  # told where the record is read for the release itself; GitHub is not at fault
            return
        except Exception as error:  # noqa: BLE001 - GitHub must never fail a deploy
            self._quiet_until = self._s.clock() + COOL_OFF_SECONDS
            self._tell(error, log)

    def _follow(self, release: Release) -> None:
        store = self._s.store
        found = store.release(release.tag)  # what is recorded now: another invocation may have posted since
        current = found[0] if found else release
        target = github_state(current.state, current.waiting)
        posted = current.github_status if current.github_deployment else ""
        steps = statuses_to_post(posted, target)
        if not steps:
            return
        deployment_id = current.github_deployment or self._deployment(current)
        if deployment_id is None:
            return
        before = current.github_status if current.github_deployment == deployment_id else ""
        for state in steps:
            # the record moves first, compare-and-swap from what this invocation saw: of two invocations following
            # one release at once only one posts each status; a post that fails puts the record back
            if not self._record_status(current.tag, deployment_id, before, state):
                return
            try:
                self._deployments.set_status(
                    deployment_id, state, description(current.tag, state, current.state, current.error,
                                                      waiting=current.waiting),
                    environment_url=self._s.config.frontend.url, log_url=current.log_url)
            except Exception:
                self._record_status(current.tag, deployment_id, state, before)
                raise
            before = state
            if state == SUCCESS and current.previous.get("tag"):
                # GitHub made the release before inactive (auto_inactive): its record says so, so that a rollback
                # to it posts success again
                self._made_inactive(str(current.previous["tag"]))

    def _record_status(self, tag: str, deployment_id: int, before: str, after: str) -> bool:
        """Whether this call moved the record's status from `before` to `after` (nobody else moved it first)."""
        moved = False

        def change(r: Release) -> Release | None:
            nonlocal moved
            moved = r.github_deployment == deployment_id and r.github_status == before
            return r.but(github_status=after) if moved else None

        self._s.store.update_release(tag, change)
        return moved

    def _made_inactive(self, tag: str) -> None:
        try:
            self._s.store.update_release(tag, lambda r: r.but(github_status=INACTIVE) if r.github_status == SUCCESS
                                         else None)
        except TagshipError as error:  # its record is broken: a rollback to it is refused anyway
            logger.bind(tag=tag).warning("could not record the deployment GitHub made inactive", error=str(error)[:200])

    def _deployment(self, release: Release) -> int | None:
        """The release's deployment: found again by its marker (an id lost with a record), else made; recorded.
        Only the invocation whose claim lands in the record makes it (two build messages at once make one
        deployment); a claim older than CLAIM_SECONDS is a dead invocation's and is taken over. None: another
        invocation is making it now."""
        github = self._s.config.github
        now = self._s.clock()
        token = f"{CLAIM}{uuid.uuid4().hex}:{now:.3f}"

        def claim(r: Release) -> Release | None:
            if r.github_deployment or (r.github_status.startswith(CLAIM) and now - _claimed_at(r.github_status)
                                       < CLAIM_SECONDS):
                return None
            return r.but(github_status=token)

        claimed = self._s.store.update_release(release.tag, claim)
        if claimed is None or claimed.github_status != token:
            return claimed.github_deployment if claimed is not None else None
        mark = marker(release.identity)
        found = self._deployments.find(release.tag, github.environment, mark)
        made = found or self._deployments.create(release.tag, github.environment, mark,
                                                 description(release.tag, "queued", release.state),
                                                 production=github.production_environment)
        recorded = self._s.store.update_release(
            release.tag, lambda r: r.but(github_deployment=made, github_status="") if r.github_status == token else None)
        if recorded is not None and recorded.github_deployment:
            return recorded.github_deployment
        return made

    def _tell(self, error: Exception, log: Logger) -> None:
        text = str(error)[:600]
        if isinstance(error, PermanentError):
            kind = text.split(":", 1)[0]
            with self._lock:
                first = kind not in self._told
                self._told.add(kind)
            if first:
                log.error("GitHub deployment status not set; the deploy goes on", error=text)
                return
        log.warning("GitHub deployment status not set; the deploy goes on", error=text)



def _claimed_at(status: str) -> float:
    try:
        return float(status.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0.0
