"""The gcloud commands doctor runs (read-only) and the fixes it prints of its own parse with the real gcloud:
signed out, a command that parses exits 1, an argument error exits 2."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import config
from shared.adapters.gcloud_inventory import GcloudInventory
from shared.core import doctor
from shared.core.doctor import Unread
from shared.errors import CannotRead
from shared.install_plan import plan
from shared.ports import BucketFacts, RunResource, SchedulerJob
from tests.gcloud.test_setup_commands_parse import _shape

GCLOUD = shutil.which("gcloud")
pytestmark = pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")


def signed_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
    monkeypatch.setenv("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "1")


def test_every_read_doctor_asks_of_gcloud_parses(tmp_path, monkeypatch):
    signed_out(tmp_path, monkeypatch)
    reads = (lambda i: i.enabled_apis(), lambda i: i.project_members("roles/run.developer"),
             lambda i: i.service_accounts(), lambda i: i.secret_versions("tagship-slack-bot-token"),
             lambda i: i.scheduler_job("asia-southeast1", "tagship-health"))

    def refusal(read):
        try:
            read(GcloudInventory("botbalance-prod"))
        except CannotRead as error:
            return str(error)
        return "answered"

    with ThreadPoolExecutor(max_workers=5) as pool:
        said = list(pool.map(refusal, reads))
    assert [s for s in said if "gcloud (exit 1)" not in s] == []


def own_fixes(c):
    """Every gcloud fix doctor prints that is not one of setup's own commands (those are parsed beside setup)."""
    steps = plan(c)
    setup = {step.shell() for step in steps}
    findings = [
        *doctor.apis(c, frozenset()),
        *doctor.run_resource(c, "api", None), *doctor.run_resource(c, "migrations", None),
        *doctor.run_resource(c, "worker", None), *doctor.run_resource(c.replace(worker={"kind": "pool"}), "worker", None),
        *doctor.run_resource(c, "worker", RunResource("service", c.worker.service, ("",), 0, True)),
        *doctor.buckets(c, steps, Unread("-"), None),
        *doctor.scheduler(c, steps, SchedulerJob("tagship-health", "* * * * *",
                                                 f"projects/{c.project.id}/topics/{c.topics.health}", "PAUSED")),
        *doctor.buckets(c, steps, BucketFacts(c.state.bucket, "", ""), BucketFacts(c.frontend.bucket, "", "")),
    ]
    shapes = {_shape(shlex.split(f.fix)): f.fix for f in findings if f.fix.startswith("gcloud ") and f.fix not in setup}
    return sorted(shapes.values())  # one of each shape: the rest differ only in values


def test_every_fix_doctor_prints_of_its_own_parses(tmp_path):
    env = {**os.environ, "CLOUDSDK_CONFIG": str(tmp_path), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
           "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"}
    fixes = own_fixes(config.load())
    assert len(fixes) >= 5

    def run(fix):
        done = subprocess.run(shlex.split(fix), env=env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        return fix, done.returncode, done.stderr.strip().splitlines()[-3:]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, fixes))
    assert [r for r in results if r[1] != 1] == []
