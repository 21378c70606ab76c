"""Everything tagship says in Slack: pure text builders, plain data in and a `str` out, one per message, named for
what it says. `now` is passed in; nothing here reads the clock, does I/O or imports an adapter or a client library.
The functions call a builder and post what it returns.

Text from outside (a tag, a name, a reason, an error, a pusher, a policy, a summary, a URL) goes through
`shared.text` (`outside`, `link`) with the limit it has always had, so Slack shows it as text: never a broadcast, a
mention or a forged link. Our own names (revisions, executions, digests, Cloud Build's status) are shown as
they are.
"""
from __future__ import annotations

from shared.release import Release
from shared.text import link, outside


# -- how long and when -------------------------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m {rest:02d}s"


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
        f"{emoji} *{outside(release.tag, 120)}*{attempt} · {release.state}{waiting} · "
        f"{duration(ended_at - release.created_at)}",
        f"commit `{outside(release.commit[:12], 12)}` pushed by {outside(release.pushed_by, 80)}"
        + (f" · {build_log}" if build_log else ""),
    ]
    if release.error:
        lines.append(f"reason: {outside(release.error, 1500)}")
    return "\n".join(lines)
