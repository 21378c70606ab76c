"""Every command `python main.py setup` prints parses with the real gcloud (no account: 1, an argument error: 2).

One command of each shape (the same gcloud verb with the same flags) is run: the rest differ only in values."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import config
from shared.install_plan import CHANNEL, PROJECT_NUMBER, alert_policy, plan

GCLOUD = shutil.which("gcloud")
VALUES = {PROJECT_NUMBER: "123456789012", CHANNEL: "projects/botbalance-prod/notificationChannels/42"}


def _shape(command):
    """The gcloud verb and the flags it is given, without their values."""
    verb = []
    for arg in command:
        if arg.startswith("-"):
            break
        verb.append(arg)
    return tuple(verb[:-1] if len(verb) > 3 else verb) + tuple(sorted(arg for arg in command if arg.startswith("--")))


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_every_generated_command_parses_with_the_installed_gcloud(tmp_path):
    (tmp_path / "tagship-alert-policy.json").write_text(json.dumps(alert_policy(config.load())))
    env = {**os.environ, "CLOUDSDK_CONFIG": str(tmp_path), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
           "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"}

    def run(step):
        done = subprocess.run(step.command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return step, done.returncode, done.stderr

    shapes = {}
    for step in plan(config.load()):
        ready = step.resolved(VALUES) if step.needs else step
        shapes.setdefault(_shape(ready.command), ready)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, shapes.values()))
    parse_errors = [(step.shell(), err.strip().splitlines()[-3:]) for step, code, err in results if code == 2]
    assert parse_errors == []
    assert all(code == 1 for _, code, _ in results)
