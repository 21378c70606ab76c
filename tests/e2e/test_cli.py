"""The command line against the local cloud, run as a person would: a separate process, the real clients."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from shared import log
from tests.e2e.conftest import wait_ended

ROOT = Path(__file__).resolve().parents[2]


def cli(cloud, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", cloud.config_path, *args],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_status_history_metrics_and_a_manual_rollback_from_the_command_line(cloud):
    for tag in ("v1.0.0", "v1.1.0"):
        cloud.push_tag(tag, pusher="hana")
        assert wait_ended(cloud, tag)["state"] == "live"
    status = json.loads(cli(cloud, "status", "--json").stdout)
    assert status["live"] == "v1.1.0" and status["previous"] == "v1.0.0"
    history = cli(cloud, "history").stdout
    assert "v1.0.0" in history and "hana" in history
    metrics = json.loads(cli(cloud, "metrics", "--json").stdout)
    assert metrics["deployments"] == 2 and metrics["change_failure_rate"] == 0.0
    done = cli(cloud, "rollback", "--reason", "checkout broken", "--by", "hana")
    assert done.returncode == 0, done.stderr
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="the rollback the CLI asked for")
    assert json.loads(cli(cloud, "status", "--json").stdout)["live"] == "v1.0.0"


def test_a_missing_config_gives_a_clear_error_and_exit_code_2(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(tmp_path / "none.toml"), "status"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "config file not found" in done.stderr


def test_a_full_scenario_never_logs_or_posts_a_secret(cloud):
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        cloud.push_tag("v1.0.0")
        wait_ended(cloud, "v1.0.0")
        cloud.deliver("push", cloud.tag_push_payload("v1.1.0", "b" * 40), secret="wrong-secret")
        cloud.push_tag("v1.1.0", app="unhealthy")
        wait_ended(cloud, "v1.1.0")
        cloud.tick_watchdog()
        cloud.wait_for(lambda: cloud.store().watchdog() is not None, 10, what="a watchdog tick")
    finally:
        log.set_stream(None)
    logs = stream.getvalue()
    slack = json.dumps(cloud.slack.messages)
    assert "release started" in logs  # the logs were captured
    for secret in (cloud.webhook_secret, os.environ["SLACK_BOT_TOKEN"]):
        assert secret not in logs
        assert secret not in slack


def test_a_corrupt_record_is_found_shown_and_mended_from_the_command_line_and_a_sound_one_is_left_alone(cloud):
    cloud.push_tag("v1.0.0")
    assert wait_ended(cloud, "v1.0.0")["state"] == "live"
    assert cli(cloud, "state", "check").returncode == 0
    bucket = cloud.storage_client().bucket(cloud.config.state.bucket)
    bucket.blob("releases/v1.0.0.json").upload_from_string(json.dumps({"tag": "v1.0.0", "history": "live"}))
    bucket.blob("pointer.json").upload_from_string(json.dumps({"live": 5}))
    check = cli(cloud, "state", "check")
    assert check.returncode == 1 and "corrupt  releases/v1.0.0.json" in check.stdout and "pointer.json" in check.stdout
    shown = cli(cloud, "state", "show", "releases/v1.0.0.json")
    assert shown.returncode == 0 and '"history": "live"' in shown.stdout and "corrupt:" in shown.stdout
    assert cli(cloud, "state", "repair", "lease.json").returncode == 1  # not corrupt: left alone
    for name in ("releases/v1.0.0.json", "pointer.json"):
        mended = cli(cloud, "state", "repair", name, "--by", "dana")
        assert mended.returncode == 0 and f"mended {name}" in mended.stdout, mended.stderr
    assert cli(cloud, "state", "check").returncode == 0
    assert cloud.release("v1.0.0")["state"] == "failed" and "mended by dana" in cloud.release("v1.0.0")["error"]
    assert cli(cloud, "state", "show", "nothing.json").returncode == 1


def test_a_tag_started_from_the_command_line_goes_live_once_and_a_bad_tag_or_commit_is_refused(cloud):
    commit = cloud.commit_for("v1.0.0")
    started = cli(cloud, "start", "v1.0.0", "--commit", commit, "--by", "ivy")
    assert started.returncode == 0 and json.loads(started.stdout.splitlines()[-1])["answer"] == 202, started.stderr
    assert wait_ended(cloud, "v1.0.0")["state"] == "live"
    again = cli(cloud, "start", "v1.0.0", "--commit", commit)
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[-1])["status"] == "duplicate"
    assert len(cloud.builds) == 1 and cloud.release("v1.0.0")["pushed_by"] == "ivy"
    assert cli(cloud, "start", "v1.0.0\n", "--commit", commit).returncode == 2
    assert cli(cloud, "start", "v2.0.0", "--commit", "abc").returncode == 2
