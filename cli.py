"""The command line for people: `python main.py --help`."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shared.errors import ConfigError, TagshipError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="tagship: push a git tag, and the release ships itself (Cloud Run API + worker, migrations, "
        "frontend), watched and rolled back when it misbehaves.",
    )
    parser.add_argument("--config", help="config file (default: $TAGSHIP_CONFIG or ./tagship.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole story on the local cloud (no Google account needed)")
    demo.add_argument("--quick", action="store_true", help="only the deploy part of the story")
    status = sub.add_parser("status", help="what is live, what is in flight")
    status.add_argument("--json", action="store_true")
    history = sub.add_parser("history", help="releases with their states, durations and who pushed")
    history.add_argument("--json", action="store_true")
    rollback = sub.add_parser("rollback", help="ask the rollback function to roll back (publishes the request)")
    rollback.add_argument("--to", default="previous", help="a tag, or 'previous' (default)")
    rollback.add_argument("--reason", required=True)
    rollback.add_argument("--by", default=None, help="who asks (default: $USER)")
    canary = sub.add_parser("canary", help="pause, resume, promote now or abort the running canary (publishes the "
                            "control on the rollback topic)")
    canary.add_argument("verb", choices=("pause", "resume", "promote", "abort"))
    canary.add_argument("tag", nargs="?", default=None, help="the release whose canary (default: the one running)")
    canary.add_argument("--reason", default="")
    canary.add_argument("--by", default=None, help="who asks (default: $USER)")
    start = sub.add_parser("start", help="start the release of a tag by hand, as its push would (GitHub sends no push "
                           "event when more than three tags are pushed at once)")
    start.add_argument("tag")
    start.add_argument("--commit", required=True, help="the full 40-character sha the tag points at")
    start.add_argument("--by", default=None, help="who starts it (default: $USER)")
    metrics = sub.add_parser("metrics", help="the four DORA figures over a window")
    metrics.add_argument("--days", type=float, default=30.0)
    metrics.add_argument("--json", action="store_true")
    report = sub.add_parser("report", help="write the releases, the DORA figures over time and what serves now as one "
                            "self-contained HTML page")
    report.add_argument("--out", default="tagship-report.html", help="the page to write (default: tagship-report.html)")
    report.add_argument("--days", type=float, default=30.0, help="window of the releases and of each DORA figure")
    report.add_argument("--points", type=int, default=12, help="points on each DORA chart, a week apart by default")
    report.add_argument("--every-days", type=float, default=7.0, help="days between two chart points")
    doctor = sub.add_parser("doctor", help="check the project against the config, read-only: each finding pass, warn, "
                            "fail or not checked, with the command that fixes it (exit 1 when any fails)")
    doctor.add_argument("--json", action="store_true")
    state = sub.add_parser("state", help="check, show or mend tagship's own records in the state bucket")
    state_verbs = state.add_subparsers(dest="verb", required=True)
    state_verbs.add_parser("check", help="list every record that is corrupt (exit 1 if any)")
    show = state_verbs.add_parser("show", help="print one record as stored, e.g. releases/v1.4.0.json")
    show.add_argument("name")
    repair = state_verbs.add_parser("repair", help="mend one corrupt record (refused when it is not corrupt)")
    repair.add_argument("name")
    repair.add_argument("--by", default=None, help="who mends it (default: $USER)")
    deploys = sub.add_parser("deploys", help="the gates: see, pause or resume deploys, let a held tag go, "
                             "approve or refuse a release")
    deploys_verbs = deploys.add_subparsers(dest="verb", required=True)
    deploys_verbs.add_parser("status", help="whether deploys are paused, which freeze window holds, which tag waits")
    for verb, what in (("pause", "hold every tag pushed from now until resumed"),
                       ("resume", "end a pause (a rollback's too); the held tag starts unless a freeze holds it"),
                       ("release", "let the held tag go now, through a pause and a freeze (an override)")):
        verb_parser = deploys_verbs.add_parser(verb, help=what)
        verb_parser.add_argument("--by", default=None, help="who (default: $USER)")
        if verb != "resume":
            verb_parser.add_argument("--reason", required=True)
    for verb, what in (("approve", "approve the release waiting for it (gates.approval): it goes on"),
                       ("refuse", "refuse the release waiting for approval: it ends failed, nothing of it serves")):
        verb_parser = deploys_verbs.add_parser(verb, help=what + " (publishes the decision on the rollback topic)")
        verb_parser.add_argument("tag")
        verb_parser.add_argument("--by", default=None, help="who (default: $USER)")
        verb_parser.add_argument("--reason", default="", required=verb == "refuse")
    sub.add_parser("config-reference", help="print the configuration reference (Markdown) from the config schema")
    setup = sub.add_parser("setup", help="print (or --apply) the gcloud commands that install tagship")
    setup.add_argument("--apply", action="store_true", help="run them, showing each, stopping at the first failure")
    setup.add_argument("--source", default=".", help="directory the functions are deployed from (default: .)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from localcloud.demo import run_demo

        return run_demo(quick=args.quick)
    if args.command == "config-reference":
        print(config_reference())
        return 0
    try:
        from shared import config as config_module

        config = config_module.load(args.config)
    except ConfigError as error:
        print(f"tagship: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "status":
            return _status(config, args.json)
        if args.command == "history":
            return _history(config, args.json)
        if args.command == "rollback":
            return _rollback(config, args)
        if args.command == "start":
            return _start(config, args)
        if args.command == "canary":
            return _canary(config, args)
        if args.command == "metrics":
            return _metrics(config, args)
        if args.command == "setup":
            return _setup(config, args)
        if args.command == "state":
            from cli_state import state

            return state(config, args)
        if args.command == "deploys":
            from cli_gates import deploys

            return deploys(config, args)
        if args.command == "report":
            return _report(config, args)
        if args.command == "doctor":
            return _doctor(config, args.json)
    except TagshipError as error:
        print(f"tagship: {error}", file=sys.stderr)
        return 1
    return 2


def _store(config: Any) -> Any:
    from shared.adapters.storage import GcsRecords
    from shared.state import StateStore

    return StateStore(GcsRecords(config.project.id, config.state.bucket))


def _status(config: Any, as_json: bool) -> int:
    store = _store(config)
    pointer = store.pointer()
    lease = store.lease()
    in_flight = [r for r in store.releases() if not r.ended and r.state != "live"]
    found = store.watchdog()
    watchdog = found if found is not None and isinstance(found.data, dict) else None  # corrupt: `state check` says
    data = {
        "live": pointer.live,
        "previous": pointer.previous,
        "in_flight": [{"tag": r.tag, "state": r.state, "waiting": r.waiting, "canary": _canary_now(config, r)}
                      for r in in_flight],
        "lease": lease.to_dict() if lease else None,
        "watchdog": watchdog.data if watchdog else None,
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"live:      {pointer.live or '(nothing deployed by tagship yet)'}")
    print(f"previous:  {pointer.previous or '-'}")
    for item in data["in_flight"]:
        canary = f", {item['canary']}" if item["canary"] else ""
        print(f"in flight: {item['tag']} ({item['state']}{', waiting' if item['waiting'] else ''}{canary})")
    if watchdog:
        print(f"watchdog:  {watchdog.data.get('status', 'unknown')} since {watchdog.data.get('since')}")
    return 0


def _canary_now(config: Any, release: Any) -> str:
    """Where a release's canary stands, in a few words ("" without one)."""
    from shared.canary_record import from_record

    state = from_record(release.canary, f"releases/{release.tag}.json")
    if state is None:
        return ""
    if state.ended:
        return f"canary {state.ended}"
    steps = config.canary.steps
    share = f" ({steps[state.step]} %)" if state.step < len(steps) else ""
    return f"canary step {state.step + 1} of {len(steps)}{share}{', paused' if state.paused else ''}"


def _history(config: Any, as_json: bool) -> int:
    from shared.canary_record import from_record, history_lines
    from shared.core.wording import duration, root_approval

    releases = _store(config).releases()
    if as_json:
        print(json.dumps([r.to_dict() for r in releases], indent=2))
        return 0
    print(f"{'tag':<12} {'state':<12} {'took':>11}  {'pushed by':<12} error")
    for release in releases:
        took = duration(release.history[-1][1] - release.created_at) if release.history else "-"
        print(f"{release.tag:<12} {release.state:<12} {took:>11}  {release.pushed_by:<12} {release.error}")
        canary = from_record(release.canary, f"releases/{release.tag}.json")
        for line in history_lines(canary) if canary is not None else []:
            print(f"{'':<12} {line}")
        approval = root_approval(release.approval, release.history[-1][1]) if release.approval else ""
        if approval:
            print(f"{'':<12} {approval.removeprefix(':raised_hand: ')}")
    return 0


def _rollback(config: Any, args: Any) -> int:
    import getpass

    from shared.adapters.pubsub import GooglePublisher

    live = _store(config).pointer().live
    request = {"to": args.to, "from": live, "reason": args.reason, "requested_by": args.by or getpass.getuser()}
    message_id = GooglePublisher(config.project.id).publish(config.topics.rollback, request)
    print(f"rollback requested ({message_id}): {live or '-'} -> {args.to}. Watch the release thread in Slack.")
    return 0


def _canary(config: Any, args: Any) -> int:
    import getpass

    from shared.adapters.pubsub import GooglePublisher

    control = {"canary": args.verb, "tag": args.tag, "reason": args.reason, "requested_by": args.by or getpass.getuser()}
    message_id = GooglePublisher(config.project.id).publish(config.topics.rollback, control)
    print(f"canary {args.verb} requested ({message_id}) for {args.tag or 'the running canary'}. "
          "Watch the release thread in Slack.")
    return 0


def _start(config: Any, args: Any) -> int:
    import getpass
    import re
    import uuid

    from shared.config import Secrets
    from shared.gates import start_or_hold
    from shared.log import logger
    from shared.webhook import Start, tag_matches
    from shared.wiring import Services

    if not tag_matches(config.github.tag_pattern, args.tag):
        print(f"tagship: tag {args.tag[:80]!r} does not match github.tag_pattern {config.github.tag_pattern}",
              file=sys.stderr)
        return 2
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        print(f"tagship: --commit: expected the full 40-character sha, found {args.commit[:80]!r}", file=sys.stderr)
        return 2
    by = (args.by or getpass.getuser())[:80]
    services = Services(config=config, secrets=Secrets.from_env())
    answer = start_or_hold(services, Start(args.tag, args.commit, by), f"cli-{uuid.uuid4()}",
                           logger.bind(trigger="cli", tag=args.tag))
    print(json.dumps({"answer": answer.status, **answer.body}))
    return 0 if answer.status < 300 else 1


def _setup(config: Any, args: Any) -> int:
    import os
    import subprocess
    from pathlib import Path

    from shared import config as config_module
    from shared.install_plan import (
        POLICY_FILE,
        WEBHOOK_SECRET,
        alert_policy,
        config_in_source,
        notes,
        plan,
    )

    chosen = args.config or os.environ.get(config_module.CONFIG_ENV) or config_module.DEFAULT_PATH
    try:
        steps = plan(config, args.source, config_in_source(str(chosen), args.source))
    except ConfigError as error:
        print(f"tagship: {error}", file=sys.stderr)
        return 2
    policy = Path(POLICY_FILE)
    policy.write_text(json.dumps(alert_policy(config), indent=2) + "\n")
    print(f"# tagship setup for project {config.project.id} ({config.project.region}) with the config {chosen}; "
          f"alert policy written to {policy}")
    values: dict[str, str] = {}
    for step in steps:
        for lookup in step.needs:
            if lookup.name in values:
                continue
            print(f"\n# {lookup.what}\n{lookup.shell()}")
            values[lookup.name] = ""
            if args.apply:
                found = subprocess.run(lookup.command, capture_output=True, text=True, check=False)
                values[lookup.name] = found.stdout.strip().splitlines()[0] if found.stdout.strip() else ""
                if found.returncode != 0 or not values[lookup.name]:
                    print(f"tagship: stopped: could not read {lookup.what} (exit {found.returncode})", file=sys.stderr)
                    return found.returncode or 1
        print(f"\n# {step.title}" + (f": {step.reason}" if step.reason else ""))
        print(step.shell())
        if not args.apply:
            continue
        ready = step.resolved(values) if step.needs else step
        if ready.check is not None and subprocess.run(ready.check, capture_output=True, check=False).returncode == 0:
            print("#   already there: skipped")
            continue
        done = subprocess.run(ready.command, check=False)
        if done.returncode != 0:
            print(f"tagship: stopped: that command exited {done.returncode}", file=sys.stderr)
            return done.returncode
    print("\n# Then, in GitHub: Settings > Webhooks > Add webhook")
    print(f"#   Payload URL: https://{config.project.region}-{config.project.id}.cloudfunctions.net/tagship-deploy-on-tag")
    print("#   Content type: application/json; events: just the push event")
    print(f"#   Secret: the value you stored with: gcloud secrets versions add {WEBHOOK_SECRET} --data-file=-")
    for note in notes(config):
        print(f"# Note, {note}")
    print("# And invite the Slack bot to the channel (/invite @your-bot in "
          f"{config.slack.channel}): a bot that is not in it cannot post there.")
    return 0


def _metrics(config: Any, args: Any) -> int:
    import dataclasses
    import time

    from shared.core.wording import duration
    from shared.dora import dora

    figures = dora(_store(config).releases(), now=time.time(), window_days=args.days)
    if args.json:
        print(json.dumps(dataclasses.asdict(figures), indent=2))
        return 0

    def seconds(value: float | None) -> str:
        return "-" if value is None else duration(value)

    rate = "-" if figures.change_failure_rate is None else f"{figures.change_failure_rate:.0%}"
    print(f"over the last {figures.window_days:g} days:")
    print(f"  deployment frequency  {figures.deployment_frequency_per_day:.2f} a day ({figures.deployments} live)")
    print(f"  lead time (median)    {seconds(figures.lead_time_median_seconds)} from tag push to live")
    print(f"  change failure rate   {rate}")
    print(f"  time to restore       {seconds(figures.time_to_restore_median_seconds)} (median)")
    return 0


def _doctor(config: Any, as_json: bool) -> int:
    from shared.config import Secrets
    from shared.core.doctor import FAIL, worst
    from shared.doctor import as_text, examine
    from shared.doctor import as_json as json_of
    from shared.wiring import Services

    s = Services(config=config, secrets=Secrets.from_env())
    findings = examine(config, s.project_reader, s.inventory, s.slack_access, s.http)
    print(json_of(findings) if as_json else as_text(findings))
    return 1 if worst(findings) == FAIL else 0


def _report(config: Any, args: Any) -> int:
    from shared.reporting import write_report

    return write_report(config, _store(config), args.out, days=args.days, points=args.points,
                        every_days=args.every_days)


def config_reference() -> str:
    """The README's configuration table, generated from the schema so the two never drift."""
    from shared.config import schema

    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, doc in schema():
        lines.append(f"| `{key}` | {kind} | `{default}` | {doc} |" if default != "(required)" else f"| `{key}` | {kind} | required | {doc} |")
    return "\n".join(lines)
