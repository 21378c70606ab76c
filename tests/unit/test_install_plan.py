"""Every command `python main.py setup` prints parses with the real gcloud (no account: 1, an argument error: 2)."""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import config
from shared.install_plan import alert_policy, plan

GCLOUD = shutil.which("gcloud")


def test_names_come_from_the_config_so_they_never_drift():
    loaded = config.load()
    shells = [step.shell() for step in plan(loaded)]
    assert any(f"gs://{loaded.state.bucket}" in s for s in shells)
    assert sum("functions deploy" in s for s in shells) == 4
    assert all("--project botbalance-prod" in s or "projects add-iam-policy-binding botbalance-prod" in s for s in shells)


def test_every_role_says_why():
    roles = [s for s in plan(config.load()) if "--role" in s.command]
    assert roles and all(step.reason for step in roles)


def test_the_alert_policy_is_labelled_as_a_rollback_trigger():
    policy = alert_policy(config.load())
    assert policy["userLabels"] == {"tagship_rollback": "true"}
    assert policy["displayName"] == "botbalance-api-health"


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_every_generated_command_parses_with_the_installed_gcloud(tmp_path):
    import json

    (tmp_path / "tagship-alert-policy.json").write_text(json.dumps(alert_policy(config.load())))
    env = {**os.environ, "CLOUDSDK_CONFIG": str(tmp_path), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
           "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"}

    def run(step):
        done = subprocess.run(step.command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return step, done.returncode, done.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, plan(config.load())))
    parse_errors = [(step.shell(), err.strip().splitlines()[-3:]) for step, code, err in results if code == 2]
    assert parse_errors == []
    assert all(code == 1 for _, code, _ in results)
