"""Everything tagship says in Slack: pure text builders, plain data in and a `str` out, one per message, named for
what it says. `now` is passed in; nothing here reads the clock, does I/O or imports an adapter or a client library.
The functions call a builder and post what it returns.

Text from outside (a tag, a name, a reason, an error, a pusher, a policy, a summary, a URL) goes through
`shared.text` (`outside`, `link`) with the limit it has always had, so Slack shows it as text: never a broadcast, a
mention or a forged link. Our own names (revisions, executions, digests, Cloud Build's status) and the watchdog's
alerts (the live tag, the diagnosis's reasons) are shown as they are.

`duration` is the one way a text says how long: the root's age, a step's time, a rollback's, a bake window, a
spell of bad health, a Monitoring window, a timeout.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from shared.release import Release
from shared.text import link, outside


# -- how long and when -------------------------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """`seconds` as people say it in chat, in its largest unit and the one below it, a part that is zero left
    unsaid: "0 ms", "350 ms", "12.3 s", "45 s", "1 min 05 s", "30 min", "2 h 05 min", "3 h".

    Rounded half up to the smallest unit shown (a millisecond, a tenth of a second, a second, a minute), so a value
    that rounds up into the next unit is said in it: 59.95 s is "1 min", never "60.0 s". Negative (a clock that
    stepped back) and NaN are "0 ms"."""
    seconds = seconds if seconds > 0 else 0.0
    millis = math.floor(seconds * 1000 + 0.5)
    if millis < 1000:
        return f"{millis} ms"
    whole, tenth = divmod(math.floor(seconds * 10 + 0.5), 10)
    if whole < 60:
        return f"{whole} s" if tenth == 0 else f"{whole}.{tenth} s"
    minutes, rest = divmod(math.floor(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min" if rest == 0 else f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(math.floor(seconds / 60 + 0.5), 60)
    return f"{hours} h" if minutes == 0 else f"{hours} h {minutes:02d} min"


def clock_time(when: float) -> str:
    """A moment as the channel reads it, in UTC: "14:03:27 UTC"."""
    return datetime.fromtimestamp(when, tz=UTC).strftime("%H:%M:%S UTC")


# -- a release's thread: its root, a corrupt record --------------------------------------------------------------------
EMOJI = {
    "building": ":hammer:", "migrating": ":card_file_box:", "deploying": ":rocket:", "publishing": ":globe_with_meridians:",
    "verifying": ":stethoscope:", "live": ":white_check_mark:", "failed": ":x:", "rolled_back": ":rewind:",
    "superseded": ":fast_forward:",
}


def root(release: Release, now: float) -> str:
    """The thread's root message, updated in place with the current state and how long it has taken."""
    emoji = EMOJI.get(release.state, "")
    ended_at = release.history[-1][1] if release.state in ("live", "failed", "rolled_back", "superseded") else now
    waiting = " (waiting for the release in flight)" if release.waiting else ""
    attempt = f" (attempt {release.attempt})" if release.attempt > 1 else ""
    build_log = link(release.log_url, "build log")
    lines = [
        (f"{emoji} *{outside(release.tag, 120)}*{attempt} · {release.state}{waiting} · "
         f"{duration(ended_at - release.created_at)}"),
        f"commit `{outside(release.commit[:12], 12)}` pushed by {outside(release.pushed_by, 80)}"
        + (f" · {build_log}" if build_log else ""),
    ]
    approval = root_approval(release.approval, now)
    if approval:
        lines.append(approval)
    canary = root_canary(release.canary)
    if canary:
        lines.append(canary)
    if release.error:
        lines.append(f"reason: {outside(release.error, 1500)}")
    return "\n".join(lines)


def root_canary(canary: dict[str, Any]) -> str:
    """The root's line about the canary: its step, paused, or how it ended."""
    if not canary:
        return ""
    ended = canary.get("ended")
    if ended:
        return f"canary {ended}"
    paused = " · paused" if canary.get("paused") else ""
    return f"canary at step {int(canary.get('step', 0)) + 1}{paused}"


def corrupt_record(error: str, tag: str | None) -> str:
    """A corrupt record found, told once: what `CorruptRecord` says of it (name, detail, how to mend it)."""
    about = f" (release {outside(tag, 120)})" if tag else ""  # the record's name holds its tag, its detail quotes it
    return (f":warning: tagship found a corrupt record{about}: {outside(error, 1500)}. It is not acted on; other "
            "releases go on.")


# -- a tag push that starts nothing: said in the channel, since GitHub never redelivers by itself ----------------------
def tag_moved(tag: str, pushed_commit: str, released_commit: str, state: str) -> str:
    """A released tag pushed again at another commit: refused, nothing built."""
    return (f":no_entry: *{outside(tag, 120)}* now points at `{pushed_commit[:12]}`, but it was released at "
            f"`{released_commit[:12]}` ({state}). A released tag is never moved: nothing was built. Push a new tag for "
            "the new commit.")


def build_not_submitted(tag: str, error: str) -> str:
    return (f":x: *{outside(tag, 120)}*: the build could not be submitted ({outside(error)}). Nothing was deployed; "
            "redeliver the webhook from GitHub to try again.")


def release_not_recorded(tag: str, error: str) -> str:
    return (f":x: *{outside(tag, 120)}*: the release could not be recorded ({outside(error)}). Nothing was started; "
            "redeliver the webhook from GitHub to try again.")


# -- gates: a tag held, let go; deploys paused and resumed -------------------------------------------------------------
def held(tag: str, reason: str, until: str, displaced: str | None) -> str:
    """A pushed tag held by a gate (`reason`, `until`: what ends it, a time or the command)."""
    instead = f" It takes the place of {outside(displaced, 120)}, which will not deploy." if displaced else ""
    return (f":pause_button: *{outside(tag, 120)}* is held: {outside(reason, 400)}. It starts by itself when that "
            f"ends ({outside(until, 120)}), or now with `python main.py deploys release --by NAME --reason WHY`.{instead}")


def let_go(tag: str, by: str | None, reason: str) -> str:
    """The held tag starts: its gate ended, or a person let it go (an override, with their reason)."""
    who = f" by {outside(by, 80)}" + (f" ({outside(reason, 300)})" if reason else "") if by else ""
    return f":arrow_forward: *{outside(tag, 120)}* let go{who}: starting."


def deploys_paused(by: str, reason: str) -> str:
    return (f":double_vertical_bar: Deploys paused by {outside(by, 80)}: {outside(reason, 300)}. Tags pushed now are held "
            "until `python main.py deploys resume`.")


def deploys_resumed(by: str) -> str:
    return f":arrow_forward: Deploys resumed by {outside(by, 80)}."


# -- the deploy's replies, in the order a release meets them -----------------------------------------------------------
def build_failed(status: str, log_url: str) -> str:
    """Cloud Build ended the build other than SUCCESS (`status` as it says it: FAILURE, TIMEOUT, ...)."""
    return f":x: Build {status.lower()}; nothing was deployed. {link(log_url, 'build log')}"


def built(digest: str) -> str:
    """The image is built: its digest (`sha256:...`), shown by its first twelve hex digits."""
    return f":package: Built `{digest[:19]}`"


def waiting_for(holder: str) -> str:
    """Another release holds the deploy lease; this one waits in the queue."""
    return f":hourglass: Waiting: {outside(holder, 120)} is deploying."


def superseded_by(tag: str) -> str:
    """A newer tag took this one's place in the queue before it deployed."""
    return f":fast_forward: Superseded by {outside(tag, 120)}: not deployed."


def migrations_running(execution: str) -> str:
    """The migration job's execution started (or was found started); `execution` is its full resource name."""
    return f":card_file_box: Migrations running (`{execution.rsplit('/', 1)[-1]}`)"


def migrations_done_in(seconds: float) -> str:
    return f":card_file_box: Migrations done in {duration(seconds)}"


def candidate_passed(revision: str) -> str:
    return f":white_check_mark: Candidate `{revision}` passed its smoke test"


def api_traffic_moved(revision: str) -> str:
    return f":rocket: API traffic moved to `{revision}`"


def worker_on(revision: str) -> str:
    return f":gear: Worker on `{revision}`"


def frontend_published(changed: int, files: int) -> str:
    return f":globe_with_meridians: Frontend published ({changed} of {files} files changed)"


def live_in(seconds: float, rollback_target: str | None) -> str:
    """Live, `seconds` after the tag was pushed; `rollback_target` is the release it replaced (None before tagship)."""
    return (f":white_check_mark: Live in {duration(seconds)}. "
            f"Rollback target: {outside(rollback_target or 'the pre-tagship revisions', 120)}.")


def failed(error: str, previous_tag: str | None, previous_serves: bool) -> str:
    """The release failed with `error`; when `previous_serves`, the release before it (`previous_tag`, None before
    tagship) serves, whether it was restored or never left."""
    before = outside(previous_tag or "the one before tagship", 120)
    restored = f" The previous release ({before}) serves." if previous_serves else ""
    return f":x: {outside(error, 1500)}.{restored}"


def stopped_before_traffic(why: str) -> str:
    """The deploy lost its lease mid-step (`why`, our own words) and stops before it moves any more traffic."""
    return f":octagonal_sign: Stopped before the next traffic change: {why}."


def stopped_for_newer(why: str) -> str:
    """A newer release went live while this one waited (`why` names it): this one deploys nothing more."""
    return f":octagonal_sign: {outside(why, 300)}; nothing more is deployed for it."


# -- the rollback: incidents, a rollback refused, failed or done -------------------------------------------------------
def monitoring_test_notice() -> str:
    return (":test_tube: Cloud Monitoring test notification received on the rollback topic: the channel works. "
            "Nothing rolled back.")


def incident(state: str, policy: str, summary: str, url: str, rollback_trigger: bool) -> str:
    """An incident opened or closed (`state` as Monitoring says it) that rolls nothing back: a closed one, or one
    of a policy that is not a rollback trigger (which is said)."""
    verb = "closed" if state == "closed" else "opened"
    note = "" if rollback_trigger or state == "closed" else " (this policy is not a rollback trigger)"
    return (f":rotating_light: Incident {verb}: {outside(policy, 200)}: {outside(summary, 500)}{note} "
            f"{link(url, 'incident')}")


def rollback_failed(trigger: str, requested_by: str, error: str, what: str) -> str:
    """A rollback that could not be done; `what` (our own words) says what that left."""
    return f":x: Rollback failed ({trigger}, by {outside(requested_by, 80)}): {outside(error, 500)}; {what}."


def rollback_pressed(user_name: str, tag: str) -> str:
    """A person allowed to pressed the thread's Roll back button; the rollback itself is told when it is done."""
    return f":leftwards_arrow_with_hook: {outside(user_name, 80)} pressed Roll back on {outside(tag, 120)}: asking for it."


def rollback_button_stale(tag: str, live: str | None) -> str:
    """Roll back pressed on the thread of a release that no longer serves: nothing is asked."""
    now = f"{outside(live, 120)} serves now" if live else "no release of tagship's serves now"
    return f":information_source: {outside(tag, 120)} is no longer live ({now}): nothing was rolled back."


def rollback_refused(trigger: str, requested_by: str, reason: str) -> str:
    return f":no_entry: Rollback refused ({trigger}, by {outside(requested_by, 80)}): {outside(reason, 500)}"


def rolled_back(from_tag: str, to_tag: str, *, forward: bool, seconds: float, reason: str, requested_by: str,
                trigger: str, ran_migrations: bool) -> str:
    """The unit moved from `from_tag` to `to_tag` in `seconds`: back to an older release, or `forward` to a newer
    one. When the release left ran migrations, says the schema stays migrated."""
    verb = "Rolled forward" if forward else "Rolled back"
    old, new = outside(from_tag, 120), outside(to_tag, 120)
    text = (f":rewind: *{verb}* {old} → {new} (API, worker and frontend) in {duration(seconds)}\n"
            f"why: {outside(reason, 500)}\nby: {outside(requested_by, 80)} ({trigger})")
    if ran_migrations:
        text += (f"\n:warning: {old} ran migrations: the schema stays migrated, so {new}'s code "
                 "must stay compatible with it.")
    return text


def stopped_by_rollback(reason: str) -> str:
    """The deploy in flight ends here (`reason` names the rollback that took over)."""
    return f":octagonal_sign: {outside(reason)}; this release will not continue."


# -- the canary: its steps, its verdicts, a person's controls ----------------------------------------------------------
def canary_step(step: int, steps: int, percent: int, revision: str, min_seconds: float, max_seconds: float) -> str:
    """A canary step began: the candidate serves `percent` of the API's requests, stable the rest."""
    return (f":hatching_chick: Canary step {step + 1} of {steps}: `{revision}` serves {percent} % of the API's "
            f"requests, stable the rest; judged after at least {duration(min_seconds)}, at most "
            f"{duration(max_seconds)}")


def canary_figures(candidate: tuple[int, int, float | None], stable: tuple[int, int, float | None]) -> str:
    """Each revision's (requests, 5xx answers, p95 ms) over the step's window, as a line of the thread."""
    def one(name: str, figures: tuple[int, int, float | None]) -> str:
        requests, errors, p95 = figures
        latency = f", p95 {p95:.0f} ms" if p95 is not None else ", p95 unknown"
        return f"{name} {errors} 5xx of {requests}{latency}"

    return f"{one('candidate', candidate)}; {one('stable', stable)}"


def canary_window(start: float, end: float, lag: float) -> str:
    """The window a canary step's figures were read over, and how far behind now it ended (Monitoring's lag)."""
    return f"window {clock_time(start)} to {clock_time(end)}, {duration(lag)} behind"


def canary_passed(step: int, steps: int, figures: str) -> str:
    return f":white_check_mark: Canary step {step + 1} of {steps} passed ({figures})"


def canary_failure(reason: str, figures: str, stable: str) -> str:
    """The release's error when its canary ends it (`failed` escapes it for the thread): why, the figures that
    decided, and that all the API's traffic went back to `stable` at once."""
    seen = f" ({figures})" if figures else ""
    return f"Canary: {reason}{seen}; all the API's traffic is back on {stable}"


def canary_promoted(reason: str) -> str:
    """The canary ended promoted (its last step passed, a person's promote, or an inconclusive step's longest
    with `canary.inconclusive = "promote"`); the API's traffic move follows as without a canary."""
    return f":rocket: Canary promoted: {outside(reason, 600)}"


def canary_held(text: str) -> str:
    return f":pause_button: Canary: {outside(text, 1500)}"


def canary_control(effect: str, tag: str) -> str:
    """What a person's control (pause, resume, promote, abort) or a rollback request did to `tag`'s canary;
    `effect` quotes who asked and why."""
    return f":joystick: Canary of {outside(tag, 120)}: {outside(effect, 800)}"


def canary_control_refused(tag: str, why: str) -> str:
    return f":joystick: Canary control for {outside(tag, 120)} refused: {outside(why, 600)}"


# -- an approval: asked in the thread, decided by a person (a button or the command line) ---------------------------
APPROVAL_POINTS = {"before_traffic": "before any of the API's traffic moves",
                   "before_promotion": "before the candidate takes all the API's traffic"}


def approval_asked(point: str, max_wait: float, buttons: bool, tag: str) -> str:
    """The release stopped at its approval point; who may decide and how long it waits."""
    how = "press Approve or Refuse on this thread, or run" if buttons else "run"
    return (f":raised_hand: Waiting for approval {APPROVAL_POINTS.get(point, point)}: {how} "
            f"`python main.py deploys approve {outside(tag, 120)}` (or `deploys refuse`). Refused by itself if "
            f"nobody decides within {duration(max_wait)}.")


def approval_decided(effect: str, tag: str) -> str:
    """What a person's approve or refuse did (`effect` quotes who and why)."""
    return f":raised_hand: Approval of {outside(tag, 120)}: {outside(effect, 800)}"


def approval_refused_request(tag: str, why: str) -> str:
    return f":raised_hand: Approval for {outside(tag, 120)} not applied: {outside(why, 600)}"


def approval_pressed(user_name: str, verb: str, tag: str) -> str:
    return f":raised_hand: {outside(user_name, 80)} pressed {verb.capitalize()} on {outside(tag, 120)}: asking for it."


def control_pressed(user_name: str, verb: str, tag: str) -> str:
    return f":joystick: {outside(user_name, 80)} pressed {verb.capitalize()} on {outside(tag, 120)}'s canary: asking for it."


def root_approval(approval: dict[str, Any], now: float) -> str:
    """The root's line about the release's approval, when one was asked."""
    if not approval:
        return ""
    decided, by = approval.get("decided"), outside(str(approval.get("by") or ""), 80)
    if decided == "approved":
        return f"approved by {by}"
    if decided == "refused":
        return f"approval refused by {by}"
    if decided == "expired":
        return "not approved in time"
    asked = float(approval.get("asked_at") or now)
    return f":raised_hand: waiting for approval {APPROVAL_POINTS.get(str(approval.get('point')), '')} · asked {duration(now - asked)} ago"
