"""The gcloud reader through a real subprocess: a stand-in `gcloud` on PATH answering as gcloud does (JSON on
stdout, `ERROR: (gcloud...) NOT_FOUND` on stderr with exit 1); the real gcloud signed out is in tests/gcloud."""
from __future__ import annotations

import json
import stat
import sys

import pytest

from shared.adapters.gcloud_inventory import GcloudInventory
from shared.errors import CannotRead

ANSWERS = {
    "services list": [{"config": {"name": "run.googleapis.com"}}, {"name": "projects/1/services/pubsub.googleapis.com"}],
    "projects get-iam-policy": {"bindings": [
        {"role": "roles/run.developer", "members": ["serviceAccount:a@p.iam.gserviceaccount.com"]},
        {"role": "roles/run.developer", "members": ["serviceAccount:b@p.iam.gserviceaccount.com"],
         "condition": {"title": "only some"}}]},
    "iam service-accounts": [{"email": "a@p.iam.gserviceaccount.com"}],
    "secrets versions": [{"name": "projects/1/secrets/s/versions/2", "state": "ENABLED"}],
    "scheduler jobs": {"name": "projects/p/locations/r/jobs/tagship-health", "schedule": "* * * * *",
                       "pubsubTarget": {"topicName": "projects/p/topics/tagship-health"}, "state": "ENABLED"},
}
SCRIPT = '''#!{python}
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
answers = json.loads({answers!r})
if "denied" in args:
    sys.stderr.write("WARNING: something first\\nERROR: (gcloud) PERMISSION_DENIED: denied\\nmore help\\n")
    sys.exit(1)
if "missing" in args:
    sys.stderr.write("ERROR: (gcloud.secrets.versions.list) NOT_FOUND: Secret [missing] not found or has no versions.\\n")
    sys.exit(1)
for key, answer in answers.items():
    if " ".join(args).startswith(key):
        print(json.dumps(answer))
        sys.exit(0)
sys.exit(2)
'''


@pytest.fixture
def gcloud(tmp_path):
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "gcloud"
    script.write_text(SCRIPT.format(python=sys.executable, log=str(log), answers=json.dumps(ANSWERS)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), log


def test_reads_each_answer_as_gcloud_prints_it_and_asks_each_command_once(gcloud):
    binary, log = gcloud
    inventory = GcloudInventory("p", gcloud=binary)
    assert inventory.enabled_apis() == {"run.googleapis.com", "pubsub.googleapis.com"}
    assert inventory.project_members("roles/run.developer") == {"serviceAccount:a@p.iam.gserviceaccount.com"}
    assert inventory.project_members("roles/run.viewer") == frozenset()  # one policy read for every role
    assert inventory.service_accounts() == {"a@p.iam.gserviceaccount.com"}
    assert inventory.secret_versions("s") == 1
    assert inventory.secret_versions("missing") is None
    job = inventory.scheduler_job("r", "tagship-health")
    assert job is not None and (job.topic, job.state) == ("projects/p/topics/tagship-health", "ENABLED")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(c[:2] == ["projects", "get-iam-policy"] for c in calls) == 1
    assert all("access" not in c for c in calls)  # a secret's value is never asked for
    assert all(c[-3:] == ["--project", "p", "--quiet"] for c in calls)


def test_a_refusal_is_cannot_read_with_gcloud_s_error_line_and_is_asked_only_once(gcloud):
    binary, log = gcloud
    inventory = GcloudInventory("denied", gcloud=binary)
    for _ in range(2):
        with pytest.raises(CannotRead, match=r"the APIs enabled: gcloud \(exit 1\): ERROR: \(gcloud\) PERMISSION_DENIED: denied$"):
            inventory.enabled_apis()
    assert sum(json.loads(line)[:2] == ["services", "list"] for line in log.read_text().splitlines()) == 1


def test_no_gcloud_is_cannot_read_saying_so():
    with pytest.raises(CannotRead, match="gcloud is not installed"):
        GcloudInventory("p", gcloud="no-such-gcloud-here").enabled_apis()
