"""What tagship says in Slack, as tables: the one duration at its rounding edges, each message's words, and every
piece of outside text shown as text and cut to the limit it has always had."""
import math

import pytest

from shared.core import watch_wording, wording
from shared.release import new_release
from shared.text import ELLIPSIS

AT = 1_700_000_000.0  # 22:13:20 UTC


@pytest.mark.parametrize(
    "seconds, said",
    [
        (0.0, "0 ms"), (0.0004, "0 ms"), (0.35, "350 ms"), (0.9994, "999 ms"), (0.9995, "1 s"), (1.0, "1 s"),
        (12.34, "12.3 s"), (45.0, "45 s"), (59.94, "59.9 s"), (59.95, "1 min"), (60.0, "1 min"),
        (65.0, "1 min 05 s"), (1800.0, "30 min"), (3599.4, "59 min 59 s"), (3599.5, "1 h"), (3629.9, "1 h"),
        (3630.0, "1 h 01 min"), (7800.0, "2 h 10 min"), (172_800.0, "48 h"), (-3.0, "0 ms"), (math.nan, "0 ms"),
    ],
    ids=[
        "nothing at all is zero milliseconds", "under half a millisecond rounds to zero",
        "under a second is said in milliseconds", "just under a second stays in milliseconds",
        "a value that rounds to a thousand milliseconds is a second", "a whole second drops its tenth",
        "under a minute is said to a tenth of a second", "whole seconds drop the tenth",
        "just under a minute stays in seconds", "59.95 s rounds up into a minute, never 60.0 s",
        "exactly a minute says no seconds", "minutes and seconds, seconds in two digits",
        "whole minutes say no seconds", "just under an hour is minutes and seconds",
        "a value that rounds to sixty minutes is an hour", "past an hour seconds are not said",
        "hours and minutes, minutes in two digits", "a long spell in hours", "days are still hours",
        "a negative duration (a clock stepped back) is zero", "not a number is zero",
    ],
)
def test_a_duration_is_said_in_its_largest_unit_and_the_one_below(seconds, said):
    assert wording.duration(seconds) == said


@pytest.mark.parametrize(
    "text, expected",
    [
        (wording.built("sha256:0123456789abcdef0123"), ":package: Built `sha256:0123456789ab`"),
        (wording.migrations_running("projects/p/locations/r/jobs/migrate/executions/migrate-x7"),
         ":card_file_box: Migrations running (`migrate-x7`)"),
        (wording.migrations_done_in(83.0), ":card_file_box: Migrations done in 1 min 23 s"),
        (wording.live_in(6.93, "v1.3.0"), ":white_check_mark: Live in 6.9 s. Rollback target: v1.3.0."),
        (wording.live_in(6.93, None), ":white_check_mark: Live in 6.9 s. Rollback target: the pre-tagship revisions."),
        (wording.failed("Smoke test failed", "v1.3.0", True),
         ":x: Smoke test failed. The previous release (v1.3.0) serves."),
        (wording.failed("Smoke test failed", None, True),
         ":x: Smoke test failed. The previous release (the one before tagship) serves."),
        (wording.failed("Migrations failed", "v1.3.0", False), ":x: Migrations failed."),
        (wording.build_failed("TIMEOUT", ""), ":x: Build timeout; nothing was deployed. "),
        (wording.rolled_back("v1.4.0", "v1.3.0", forward=False, seconds=0.72, reason="5xx", requested_by="hana",
                             trigger="manual", ran_migrations=False),
         ":rewind: *Rolled back* v1.4.0 → v1.3.0 (API, worker and frontend) in 720 ms\nwhy: 5xx\nby: hana (manual)"),
        (wording.rolled_back("v1.3.0", "v1.4.0", forward=True, seconds=1.5, reason="fixed", requested_by="hana",
                             trigger="manual", ran_migrations=True),
         (":rewind: *Rolled forward* v1.3.0 → v1.4.0 (API, worker and frontend) in 1.5 s\nwhy: fixed\nby: hana (manual)"
          "\n:warning: v1.3.0 ran migrations: the schema stays migrated, so v1.4.0's code must stay compatible with it.")),
        (wording.incident("open", "5xx", "high", "", rollback_trigger=False),
         ":rotating_light: Incident opened: 5xx: high (this policy is not a rollback trigger) "),
        (wording.incident("closed", "5xx", "ok again", "", rollback_trigger=False), ":rotating_light: Incident closed: 5xx: ok again "),
        (wording.corrupt_record("releases/v1.json: corrupt record (not JSON)", "v1"),
         (":warning: tagship found a corrupt record (release v1): releases/v1.json: corrupt record (not JSON). "
          "It is not acted on; other releases go on.")),
        (watch_wording.unhealthy("v1.1.0", AT, [], watch_wording.nothing_live()),
         (":red_circle: v1.1.0 unhealthy since 22:13:20 UTC: no detail given. No release is recorded as live: "
          "nothing to roll back.")),
        (watch_wording.still_unhealthy(None, AT, AT + 150, ["db down"], "P."),
         ":red_circle: the live release still unhealthy since 22:13:20 UTC (2 min 30 s): db down. P."),
        (watch_wording.unhealthy_too("v1.2.0", "v1.1.0", AT, AT + 120, ["db down", "slow"], "P."),
         ":red_circle: still unhealthy now that v1.2.0 serves (was v1.1.0), since 22:13:20 UTC (2 min): db down; slow. P."),
        (watch_wording.recovered("v1.1.0", AT + 60, "degraded", None),
         ":white_check_mark: v1.1.0 recovered at 22:14:20 UTC: healthy again (it had been degraded)."),
        (watch_wording.outside_bake_window("v1.1.0", 7800.0, 1800.0),
         ("v1.1.0 has been live 2 h 10 min, outside the 30 min bake window: not rolling back; a database outage is not "
          "fixed by a rollback. Roll back by hand if the release is to blame.")),
        (watch_wording.requesting_rollback("v1.1.0", "v1.0.0", 3, 600.5, 1800.0),
         ("Requesting a rollback from v1.1.0 to v1.0.0: 3 unhealthy checks in a row, v1.1.0 live for 10 min 01 s, "
          "inside the 30 min bake window.")),
        (watch_wording.about_release(":red_circle: x", "v1.1.0"), ":red_circle: x (release v1.1.0)"),
    ],
    ids=[
        "a build names its digest's first twelve hex digits", "a migration names its execution, not its path",
        "migrations done say how long", "live says how long and what a rollback returns to",
        "live before tagship returns to the revisions tagship found", "a failure says the previous release serves",
        "a failure of the first release names the one before tagship", "a failure before anything moved says only why",
        "a failed build says Cloud Build's status and no link without a log", "a rollback says who, why and how long",
        "a roll forward over a release that migrated warns of the schema",
        "an incident of a policy that rolls nothing back says so", "a closed incident is only noted",
        "a corrupt record names its release", "an unhealthy alert without reasons still reads",
        "still unhealthy says since when and for how long", "another release unhealthy too names the one before",
        "a recovery without a start time says only what it was", "outside the bake window says why it does not act",
        "a rollback request says why it is allowed", "an alert about a release with a thread names it",
    ],
)
def test_each_message_says(text, expected):
    assert text == expected


HOSTILE = "<!channel> <https://evil.example|x> & <@U123>"
HUGE = HOSTILE + "x" * 5_000_000


def _root(outside):
    release = new_release(outside, outside, outside, "d1", 0.0).but(error=outside)
    return wording.root(release, 10.0)


# Each builder with every piece of outside text it takes set to `outside`, and the most characters that text may
# take in the message: the sum of the limits it has always had (a tag 120, a pusher 80, a reason 500 ...).
BUILDERS = [
    (_root, 120 + 12 + 80 + len("\nreason: ") + 1500),  # the reason's line is there only with a reason
    (lambda o: wording.tag_moved(o, "c0ffee", "deadbeef", "live"), 120),
    (lambda o: wording.build_not_submitted(o, o), 120 + 300),
    (lambda o: wording.release_not_recorded(o, o), 120 + 300),
    (lambda o: wording.waiting_for(o), 120),
    (lambda o: wording.superseded_by(o), 120),
    (lambda o: wording.live_in(5.0, o), 120),
    (lambda o: wording.failed(o, o, True), 1500 + 120),
    (lambda o: wording.stopped_for_newer(o), 300),
    (lambda o: wording.incident("open", o, o, "", rollback_trigger=True), 200 + 500),
    (lambda o: wording.rollback_failed("manual", o, o, "nothing was changed"), 80 + 500),
    (lambda o: wording.rollback_refused("manual", o, o), 80 + 500),
    (lambda o: wording.rolled_back(o, o, forward=False, seconds=1.0, reason=o, requested_by=o, trigger="alert",
                                   ran_migrations=True), 120 * 4 + 500 + 80),
    (lambda o: wording.stopped_by_rollback(o), 300),
    (lambda o: watch_wording.unhealthy(o, 0.0, [o], watch_wording.requesting_rollback(o, o, 3, 10.0, 600.0)), 120 * 4 + 300),
    (lambda o: watch_wording.still_unhealthy(o, 0.0, 60.0, [o, o], watch_wording.rollback_already_requested(o)),
     120 * 3 + 300 * 2 + 2),
    (lambda o: watch_wording.unhealthy_too(o, o, 0.0, 60.0, [o], watch_wording.not_rolling_back_again(o)), 120 * 3 + 300),
    (lambda o: watch_wording.degraded(o, 0.0, False, [o]), 120 + 300),
    (lambda o: watch_wording.recovered(o, 60.0, o, 0.0), 120 * 2),
    (lambda o: watch_wording.about_release("an alert", o), 120),
]
BUILDER_NAMES = [
    "the root message", "a moved tag", "a build not submitted", "a release not recorded", "waiting",
    "superseded", "live", "failed", "stopped for a newer release", "an incident", "a rollback failed",
    "a rollback refused", "rolled back", "stopped by a rollback", "an unhealthy alert (the app's own words)",
    "still unhealthy", "unhealthy too", "degraded", "recovered", "an alert about a release",
]


@pytest.mark.parametrize("build", [b for b, _ in BUILDERS], ids=BUILDER_NAMES)
def test_outside_text_shows_as_text_never_a_broadcast_a_link_or_a_mention(build):
    text = build(HOSTILE)
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|x&gt; &amp; &lt;@U123&gt;" in text


@pytest.mark.parametrize("build, most", BUILDERS, ids=BUILDER_NAMES)
def test_a_five_megabyte_outside_text_is_cut_to_its_limit(build, most):
    text = build(HUGE)
    assert ELLIPSIS in text
    assert len(text) <= len(build("")) + most


@pytest.mark.parametrize(
    "build",
    [lambda url: wording.build_failed("FAILURE", url), lambda url: wording.incident("closed", "p", "s", url, True)],
    ids=["the build log", "the incident"],
)
def test_a_link_is_made_only_of_a_plain_url_its_ampersands_escaped(build):
    assert "<https://evil" not in build("https://evil.example|x>") and "|" not in build("https://a.example/|x")
    assert build("javascript:alert(1)").endswith(" ")
    good = build("https://console.cloud.google.com/b/1?project=2&x=1")
    assert "<https://console.cloud.google.com/b/1?project=2&amp;x=1|" in good


ROOT_APPROVAL = [
    ({}, ""),
    ({"point": "before_traffic", "asked_at": 100.0, "decided": None, "by": "", "reason": "", "at": None, "seen": []},
     ":raised_hand: waiting for approval before any of the API's traffic moves · asked 50 s ago"),
    ({"point": "before_traffic", "asked_at": 100.0, "decided": "approved", "by": "<!channel>", "reason": "",
      "at": 120.0, "seen": []}, "approved by &lt;!channel&gt;"),
    ({"point": "before_promotion", "asked_at": 100.0, "decided": "refused", "by": "dana", "reason": "", "at": 120.0,
      "seen": []}, "approval refused by dana"),
    ({"point": "before_promotion", "asked_at": 100.0, "decided": "expired", "by": "", "reason": "", "at": 120.0,
      "seen": []}, "not approved in time"),
]


@pytest.mark.parametrize("approval, line", ROOT_APPROVAL, ids=["none asked", "waiting", "approved, the name escaped",
                                                               "refused", "expired"])
def test_the_roots_and_the_historys_approval_line(approval, line):
    assert wording.root_approval(approval, 150.0) == line
