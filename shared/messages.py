"""What tagship says in Slack (pure text builders, so tests read them without a Slack)."""
from __future__ import annotations

from shared.release import Release
from shared.text import link, outside

EMOJI = {
    "building": ":hammer:", "migrating": ":card_file_box:", "deploying": ":rocket:", "publishing": ":globe_with_meridians:",
    "verifying": ":stethoscope:", "live": ":white_check_mark:", "failed": ":x:", "rolled_back": ":rewind:",
    "superseded": ":fast_forward:",
}


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m {rest:02d}s"


def root_text(release: Release, now: float) -> str:
    """The thread's root message, updated in place with the current state and how long it has taken."""
    emoji = EMOJI.get(release.state, "")
    ended_at = release.history[-1][1] if release.state in ("live", "failed", "rolled_back", "superseded") else now
    waiting = " (waiting for the release in flight)" if release.waiting else ""
    attempt = f" (attempt {release.attempt})" if release.attempt > 1 else ""
    lines = [
        f"{emoji} *{outside(release.tag, 120)}*{attempt} · {release.state}{waiting} · "
        f"{duration(ended_at - release.created_at)}",
        f"commit `{outside(release.commit[:12], 12)}` pushed by {outside(release.pushed_by, 80)}"
        + (f" · {link(release.log_url, 'build log')}" if link(release.log_url, "build log") else ""),
    ]
    if release.error:
        lines.append(f"reason: {outside(release.error, 1500)}")
    return "\n".join(lines)
