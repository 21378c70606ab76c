"""What arrives on the rollback topic and where a rollback goes, as named tables (incident JSON shaped like the real
Cloud Monitoring notifications, schema 1.2 and the test version)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from shared.config import RollbackConfig
from shared.errors import InputError
from shared.rollback_request import (
    ALREADY_LIVE, NEVER_LIVE, NO_PREVIOUS, NOT_LIVE, NOTHING_LIVE, REVISIONS_GONE, ROLLED_BACK_TARGET,
    UNKNOWN_RELEASE, IncidentNotice, ReleaseFacts, Refusal, RollbackPlan, RollbackRequest, TestNotice,
    is_rollback_trigger, parse_rollback_message, plan_rollback,
)


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


# ---- rollback requests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "body, attributes, expected",
    [
        ({"to": "previous", "reason": "checkout broken", "requested_by": "dana"}, {},
         RollbackRequest("previous", None, "checkout broken", "dana", "manual")),
        ({"to": "previous", "from": "v1.2.0", "reason": "5xx ratio 20%", "requested_by": "health_watchdog",
          "trigger": "watchdog"}, {},
         RollbackRequest("previous", "v1.2.0", "5xx ratio 20%", "health_watchdog", "watchdog")),
        ({"to": "v1.1.0", "from": "v1.2.0", "reason": "fixed in config", "requested_by": "dana"}, {},
         RollbackRequest("v1.1.0", "v1.2.0", "fixed in config", "dana", "manual")),
        ({"to": "previous", "reason": "pager"}, {"requested_by": "ops-oncall"},
         RollbackRequest("previous", None, "pager", "ops-oncall", "manual")),
        ({"to": "previous"}, {}, RollbackRequest("previous", None, "no reason given", "unknown", "manual")),
        ({"to": "previous", "reason": "x", "requested_by": "erin", "ticket": "OPS-12", "priority": 1}, {},
         RollbackRequest("previous", None, "x", "erin", "manual")),
        ({"to": "  v1.0.0 ", "from": " v1.1.0", "reason": " slow ", "requested_by": " gus "}, {},
         RollbackRequest("v1.0.0", "v1.1.0", "slow", "gus", "manual")),
        ({"to": "previous", "from": None, "reason": "r", "requested_by": "hal"}, {},
         RollbackRequest("previous", None, "r", "hal", "manual")),
        ({"to": "previous", "reason": "r", "requested_by": "botbalance-api-health", "trigger": "alert"}, {},
         RollbackRequest("previous", None, "r", "botbalance-api-health", "alert")),
        ({"to": "previous", "reason": "r", "requested_by": "ivy"}, {"requested_by": "someone-else"},
         RollbackRequest("previous", None, "r", "ivy", "manual")),
    ],
    ids=[
        "a manual request to previous with a reason",
        "the watchdog's own request",
        "a request by tag with from",
        "the bare gcloud example takes the requester from the attribute",
        "a request with only a target says who and why are unknown",
        "unknown fields are ignored",
        "whitespace around values is trimmed",
        "an explicit null from means whatever is live",
        "an alert trigger is accepted",
        "the body's requester wins over the attribute",
    ],
)
def test_parses_rollback_requests(body: dict[str, Any], attributes: dict[str, str], expected: RollbackRequest) -> None:
    assert parse_rollback_message(encoded(body), attributes) == expected


@pytest.mark.parametrize(
    "data, mentions",
    [
        (b"{not json", "expected JSON"),
        (b"", "expected JSON"),
        (b"\xff\xfe\x00garbage", "expected JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b'"previous"', "expected a JSON object, found str"),
        (b"null", "expected a JSON object, found null"),
        (b"{}", '"to" is missing'),
        (b'{"to": 5}', '"to": expected "previous" or a tag, found int 5'),
        (b'{"to": null}', "found null"),
        (b'{"to": ""}', "found an empty string"),
        (b'{"to": "   "}', "found an empty string"),
        (b'{"to": ["previous"]}', "found list"),
        (b'{"to": "previous", "from": ""}', '"from": expected a tag or null'),
        (b'{"to": "previous", "from": 3}', '"from": expected a tag or null, found int 3'),
        (b'{"to": "previous", "reason": ["a"]}', '"reason": expected a string'),
        (b'{"to": "previous", "requested_by": 7}', '"requested_by": expected a string'),
        (b'{"to": "previous", "trigger": "cron"}', '"trigger": expected one of manual, watchdog, alert'),
        (b'{"to": "previous", "trigger": null}', '"trigger"'),
    ],
    ids=[
        "not JSON is refused", "an empty message is refused", "bytes that are not text are refused",
        "a JSON list is not a request", "a bare JSON string is not a request", "JSON null is not a request",
        "a request without to is refused", "a number as target is refused", "a null target is refused",
        "an empty target is refused", "a blank target is refused", "a list as target is refused",
        "an empty from is refused", "a number as from is refused", "a reason that is not text is refused",
        "a requester that is not text is refused", "an unknown trigger is refused", "a null trigger is refused",
    ],
)
def test_refuses_malformed_requests_saying_what_was_expected(data: bytes, mentions: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_rollback_message(data, {})
    assert mentions in str(raised.value)


# ---- Cloud Monitoring notifications ----------------------------------------------------------------------------

UPTIME_OPEN: dict[str, Any] = {
    "incident": {
        "condition_name": "Uptime Health Check on api-noc-users",
        "ended_at": None,
        "incident_id": "0.ligwyr056k2l",
        "policy_name": "api - noc - users",
        "resource": {"labels": {"host": "MYHOST"}, "type": "uptime_url"},
        "resource_id": "",
        "resource_name": "Uptime Check URL labels {host=MYHOST}",
        "started_at": 1579559444,
        "state": "open",
        "summary": "An uptime check on Uptime Check URL labels {host=MYHOST} is failing.",
        "url": "https://app.google.stackdriver.com/incidents/0.ligwyr056k2l?project=XXXX",
    },
    "version": "1.2",
}

GCE_CLOSED: dict[str, Any] = {
    "incident": {
        "incident_id": "0.opqiw61fsv7p",
        "scoping_project_id": "internal-project",
        "scoping_project_number": 12345,
        "url": "https://console.cloud.google.com/monitoring/alerting/incidents/0.lxfiw61fsv7p?project=internal-project",
        "severity": "no severity",
        "started_at": 1577840461,
        "ended_at": 1577877071,
        "state": "closed",
        "resource_id": "11223344",
        "resource_name": "internal-project gke-cluster-1-default-pool-e2df4cbd-dgp3",
        "resource_display_name": "gke-cluster-1-default-pool-e2df4cbd-dgp3",
        "resource_type_display_name": "VM Instance",
        "resource": {"type": "gce_instance",
                     "labels": {"instance_id": "11223344", "project_id": "internal-project", "zone": "us-central1-c"}},
        "metric": {"type": "compute.googleapis.com/instance/cpu/utilization", "displayName": "CPU utilization",
                   "labels": {"instance_name": "the name of the VM instance"}},
        "metadata": {"system_labels": {"labelkey": "labelvalue"}, "user_labels": {"labelkey": "labelvalue"}},
        "policy_name": "Monitor-Project-Cluster",
        "policy_user_labels": {"user-label-1": "important label", "user-label-2": "another label"},
        "condition_name": "VM Instance - CPU utilization [MAX]",
        "threshold_value": "0.9",
        "observed_value": "0.835",
        "documentation": {"content": "TEST ALERT", "mime_type": "text/markdown", "subject": "ALERT - No severity"},
        "summary": "CPU utilization for internal-project gke-cluster-1-16-default-pool-e2df4cbd-dgp3 with metric labels "
                   "{instance_name=gke-cluster-1-default-pool-e2df4cbd-dgp3} and system labels {state=ACTIVE} "
                   "returned to normal with a value of 0.835.",
    },
    "version": "1.2",
}

PROMQL_OPEN: dict[str, Any] = {
    "version": "1.2",
    "incident": {
        "incident_id": "0.abc123def456",
        "scoping_project_id": "{PROJECT_ID}",
        "scoping_project_number": 123456789012,
        "severity": "Error",
        "state": "open",
        "started_at": 1772574279,
        "ended_at": None,
        "policy_name": "EtcdHighDiskUtilization - Error",
        "condition_name": "Etcd disk utilization > 85%",
        "summary": "Condition \"Etcd disk utilization > 85%\" was true for the last 2m0s alert started.",
        "url": "https://console.cloud.google.com/monitoring/alerting/alerts/...",
        "documentation": {"content": "Etcd disk utilization exceeds 85%", "mime_type": "text/markdown"},
        "resource": {"type": "prometheus_target", "labels": {"namespace": "clusters-my-hcp"}},
        "metric": {"type": "__missing__", "displayName": "__missing__",
                   "labels": {"cluster_id": "aaaaaaaa", "region": "us-central1", "value": "99.5"}},
    },
}


def cloud_run_incident(state: str = "open", labels: dict[str, str] | None = None, **changes: Any) -> dict[str, Any]:
    """An alert policy on the API's 5xx ratio, as its Pub/Sub notification channel delivers it."""
    incident: dict[str, Any] = {
        "incident_id": "0.nx7c1ia0wtn4", "scoping_project_id": "botbalance-prod", "scoping_project_number": 401234567890,
        "url": "https://console.cloud.google.com/monitoring/alerting/alerts/0.nx7c1ia0wtn4?project=botbalance-prod",
        "severity": "Critical", "started_at": 1717400000, "ended_at": None if state == "open" else 1717400600,
        "state": state, "resource_id": "", "resource_name": "botbalance-prod botbalance-api",
        "resource_display_name": "botbalance-api", "resource_type_display_name": "Cloud Run Revision",
        "resource": {"type": "cloud_run_revision",
                     "labels": {"project_id": "botbalance-prod", "service_name": "botbalance-api",
                                "revision_name": "botbalance-api-v1-2-0", "location": "asia-southeast1"}},
        "metric": {"type": "run.googleapis.com/request_count", "displayName": "Request Count",
                   "labels": {"response_code_class": "5xx"}},
        "metadata": {"system_labels": {}, "user_labels": {}},
        "policy_name": "botbalance-api-5xx", "policy_user_labels": labels if labels is not None else {"tagship_rollback": "true"},
        "condition_name": "5xx ratio above 5%", "threshold_value": "0.05", "observed_value": "0.21",
        "summary": "5xx ratio for botbalance-prod botbalance-api is above the threshold of 0.05 with a value of 0.21.",
    }
    incident.update(changes)
    return {"version": "1.2", "incident": incident}


GOOGLE_TEST_NOTIFICATION: dict[str, Any] = {
    "version": "test",
    "incident": {
        "incident_id": "12345", "scoping_project_id": "12345", "scoping_project_number": 12345,
        "url": "http://www.example.com", "started_at": 0, "ended_at": 0, "state": "OPEN", "summary": "Test Incident",
        "apigee_url": "http://www.example.com", "observed_value": "1.0",
        "resource": {"type": "example_resource", "labels": {"example": "label"}},
        "resource_type_display_name": "Example Resource Type", "resource_id": "12345",
        "resource_display_name": "Example Resource", "resource_name": "projects/12345/example_resources/12345",
        "metric": {"type": "test.googleapis.com/metric", "displayName": "Test Metric", "labels": {"example": "label"}},
        "metadata": {"system_labels": {"example": "label"}, "user_labels": {"example": "label"}},
        "policy_name": "projects/12345/alertPolicies/12345", "policy_user_labels": {"example": "label"},
        "documentation": "Test documentation", "condition_name": "Example condition", "threshold_value": "0.5",
    },
}


@pytest.mark.parametrize(
    "body, expected",
    [
        (UPTIME_OPEN, IncidentNotice(
            "0.ligwyr056k2l", "api - noc - users", "open", None,
            "An uptime check on Uptime Check URL labels {host=MYHOST} is failing.",
            "https://app.google.stackdriver.com/incidents/0.ligwyr056k2l?project=XXXX", {})),
        (GCE_CLOSED, IncidentNotice(
            "0.opqiw61fsv7p", "Monitor-Project-Cluster", "closed", "gke-cluster-1-default-pool-e2df4cbd-dgp3",
            GCE_CLOSED["incident"]["summary"], GCE_CLOSED["incident"]["url"],
            {"user-label-1": "important label", "user-label-2": "another label"})),
        (PROMQL_OPEN, IncidentNotice(
            "0.abc123def456", "EtcdHighDiskUtilization - Error", "open", None, PROMQL_OPEN["incident"]["summary"],
            "https://console.cloud.google.com/monitoring/alerting/alerts/...", {})),
        (cloud_run_incident(), IncidentNotice(
            "0.nx7c1ia0wtn4", "botbalance-api-5xx", "open", "botbalance-api",
            cloud_run_incident()["incident"]["summary"], cloud_run_incident()["incident"]["url"],
            {"tagship_rollback": "true"})),
        (cloud_run_incident(resource={"type": "global", "labels": {"project_id": "botbalance-prod"}},
                            resource_display_name=None,
                            metric={"type": "logging.googleapis.com/user/api_errors",
                                    "labels": {"service_name": "botbalance-api"}}),
         "botbalance-api"),
        (cloud_run_incident(state="OPEN"), "open"),
        (cloud_run_incident(policy_user_labels=None, summary=None, url=None),
         IncidentNotice("0.nx7c1ia0wtn4", "botbalance-api-5xx", "open", "botbalance-api", "", "", {})),
    ],
    ids=[
        "an open uptime incident names no Cloud Run service",
        "a closed incident falls back to the resource display name and keeps the policy labels",
        "a PromQL incident without a service name parses",
        "a Cloud Run incident names its service from the resource labels",
        "a log-based incident names its service from the metric labels",
        "an upper-case state is read as lower-case",
        "missing optional fields become empty",
    ],
)
def test_parses_monitoring_incidents(body: dict[str, Any], expected: IncidentNotice | str) -> None:
    notice = parse_rollback_message(encoded(body), {"googclient_schemaencoding": "JSON"})
    assert isinstance(notice, IncidentNotice)
    if isinstance(expected, IncidentNotice):
        assert notice == expected
    else:
        assert expected in (notice.service_name, notice.state)


@pytest.mark.parametrize(
    "body, expected",
    [
        (GOOGLE_TEST_NOTIFICATION, TestNotice("Test Incident", "12345")),
        ({"version": "test", "incident": {"summary": "test"}}, TestNotice("test", None)),
        ({"version": "test"}, TestNotice("", None)),
    ],
    ids=["Google's documented test notification", "a minimal test notification", "a test notification with no incident"],
)
def test_recognises_test_notifications(body: dict[str, Any], expected: TestNotice) -> None:
    assert parse_rollback_message(encoded(body), {}) == expected


def without(key: str) -> dict[str, Any]:
    body = cloud_run_incident()
    del body["incident"][key]
    return body


@pytest.mark.parametrize(
    "body, mentions",
    [
        ({**UPTIME_OPEN, "version": "1.1"}, '"version": expected "1.2" or "test", found str \'1.1\''),
        ({**UPTIME_OPEN, "version": 1.2}, "found float 1.2"),
        ({**UPTIME_OPEN, "version": None}, "found null"),
        ({"version": "1.2"}, '"incident": expected an object, found null'),
        ({"version": "1.2", "incident": "open"}, '"incident": expected an object, found str'),
        (without("incident_id"), '"incident_id": expected a non-empty string'),
        (without("policy_name"), '"policy_name": expected a non-empty string'),
        (without("state"), '"state": expected a non-empty string'),
        (cloud_run_incident(state="acknowledged"), "expected \"open\" or \"closed\", found 'acknowledged'"),
        (cloud_run_incident(incident_id=42), '"incident_id": expected a non-empty string, found int 42'),
        (cloud_run_incident(policy_user_labels=["tagship_rollback"]), '"policy_user_labels": expected an object of strings'),
        (cloud_run_incident(policy_user_labels={"tagship_rollback": True}), '"policy_user_labels"'),
        (cloud_run_incident(summary=5), '"summary": expected a string'),
        ({"version": "test", "incident": "x"}, "test notification incident: expected an object"),
    ],
    ids=[
        "an unknown schema version is refused", "a numeric version is refused", "a null version is refused",
        "an incident notification without incident is refused", "an incident that is not an object is refused",
        "an incident without id is refused", "an incident without policy is refused",
        "an incident without state is refused", "an unknown incident state is refused",
        "a numeric incident id is refused", "policy labels that are not an object are refused",
        "policy label values must be strings", "a summary that is not text is refused",
        "a test notification whose incident is not an object is refused",
    ],
)
def test_refuses_malformed_notifications(body: dict[str, Any], mentions: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_rollback_message(encoded(body), {})
    assert mentions in str(raised.value)


# ---- which incidents roll back ---------------------------------------------------------------------------------

def notice(state: str = "open", policy: str = "botbalance-api-5xx", labels: dict[str, str] | None = None) -> IncidentNotice:
    return IncidentNotice("0.nx7c1ia0wtn4", policy, state, "botbalance-api", "5xx ratio high", "https://x", labels or {})


LISTED = RollbackConfig(automatic=True, trigger_policies=("botbalance-api-health",))


@pytest.mark.parametrize(
    "incident, expected",
    [
        (notice(labels={"tagship_rollback": "true"}), True),
        (notice(state="closed", labels={"tagship_rollback": "true"}), False),
        (notice(policy="botbalance-api-health"), True),
        (notice(state="closed", policy="botbalance-api-health"), False),
        (notice(policy="Monitor-Project-Cluster"), False),
        (notice(labels={"tagship_rollback": "false"}), False),
        (notice(labels={"tagship_rollback": ""}), False),
        (notice(labels={"tagship_rollback": "TRUE"}), True),
        (notice(labels={"tagship-rollback": "true"}), False),
        (notice(policy="botbalance-api-health-staging"), False),
        (notice(policy="Botbalance-API-Health"), False),
    ],
    ids=[
        "an open incident on a labelled policy rolls back",
        "a closed incident never rolls back, label or not",
        "an open incident on a configured policy rolls back",
        "a closed incident on a configured policy does not",
        "another policy sharing the channel does not",
        "the label set to false does not",
        "the label set to nothing does not",
        "the label value is read whatever its case",
        "a look-alike label key does not",
        "policy names match exactly, not by prefix",
        "policy names match case-sensitively, as Monitoring shows them",
    ],
)
def test_is_rollback_trigger(incident: IncidentNotice, expected: bool) -> None:
    assert is_rollback_trigger(incident, LISTED) is expected


@pytest.mark.parametrize(
    "body, expected",
    [
        (cloud_run_incident(), True),
        (cloud_run_incident(labels={}), False),
        (cloud_run_incident(labels={}, metadata={"system_labels": {}, "user_labels": {"tagship_rollback": "true"}}),
         False),
        (cloud_run_incident(state="closed"), False),
        (GCE_CLOSED, False),
    ],
    ids=[
        "a labelled Cloud Run incident as delivered rolls back",
        "the same incident on an unlabelled, unlisted policy does not",
        "a label on the resource, not the policy, does not count",
        "its closing notification does not",
        "a CPU incident from another project does not",
    ],
)
def test_delivered_incidents_that_roll_back(body: dict[str, Any], expected: bool) -> None:
    parsed = parse_rollback_message(encoded(body), {})
    assert isinstance(parsed, IncidentNotice)
    assert is_rollback_trigger(parsed, RollbackConfig()) is expected


# ---- plan_rollback ---------------------------------------------------------------------------------------------

RELEASES = {
    "v0.9.0": ReleaseFacts("v0.9.0", "live", went_live=True, revisions_present=False),
    "v1.0.0": ReleaseFacts("v1.0.0", "live", went_live=True, revisions_present=True),
    "v1.1.0": ReleaseFacts("v1.1.0", "rolled_back", went_live=True, revisions_present=True),
    "v1.2.0": ReleaseFacts("v1.2.0", "live", went_live=True, revisions_present=True),
    "v1.2.1": ReleaseFacts("v1.2.1", "superseded", went_live=False, revisions_present=False),
    "v1.3.0": ReleaseFacts("v1.3.0", "failed", went_live=False, revisions_present=True),
}


def request(to: str = "previous", from_tag: str | None = None, trigger: str = "manual",
            requested_by: str = "dana") -> RollbackRequest:
    return RollbackRequest(to, from_tag, "checkout broken", requested_by, trigger)


def plan(to: str, from_tag: str, trigger: str = "manual") -> RollbackPlan:
    return RollbackPlan(from_tag=from_tag, to_tag=to, reason="checkout broken", requested_by="dana", trigger=trigger)


@pytest.mark.parametrize(
    "rollback, live, previous, expected",
    [
        (request(from_tag="v1.2.0"), "v1.2.0", "v1.0.0", plan("v1.0.0", "v1.2.0")),
        (request(), "v1.2.0", "v1.0.0", plan("v1.0.0", "v1.2.0")),
        (request(from_tag="v1.2.0", trigger="watchdog"), "v1.2.0", "v1.0.0",
         plan("v1.0.0", "v1.2.0", "watchdog")),
        (request(from_tag="v1.3.0"), "v1.2.0", "v1.0.0", NOT_LIVE),
        (request(from_tag="v1.2.0"), "v1.0.0", "v0.9.0", NOT_LIVE),
        (request(), "v1.0.0", "v1.1.0", ROLLED_BACK_TARGET),
        (request("v1.1.0"), "v1.0.0", "v0.9.0", plan("v1.1.0", "v1.0.0")),
        (request("v1.2.0", from_tag="v1.0.0"), "v1.0.0", "v1.1.0", plan("v1.2.0", "v1.0.0")),
        (request("v1.3.0"), "v1.2.0", "v1.0.0", NEVER_LIVE),
        (request("v1.2.1"), "v1.2.0", "v1.0.0", NEVER_LIVE),
        (request("v0.9.0"), "v1.2.0", "v1.0.0", REVISIONS_GONE),
        (request(), "v1.0.0", "v0.9.0", REVISIONS_GONE),
        (request("v1.2.0"), "v1.2.0", "v1.0.0", ALREADY_LIVE),
        (request(), "v1.2.0", "v1.2.0", ALREADY_LIVE),
        (request(), None, "v1.0.0", NOTHING_LIVE),
        (request(from_tag="v1.2.0"), None, None, NOTHING_LIVE),
        (request(), "v1.2.0", None, NO_PREVIOUS),
        (request("v1.0.0"), "v1.2.0", None, plan("v1.0.0", "v1.2.0")),
        (request("v9.9.9"), "v1.2.0", "v1.0.0", UNKNOWN_RELEASE),
        (request(), "v1.2.0", "v0.1.0", UNKNOWN_RELEASE),
    ],
    ids=[
        "previous rolls back to the pointer's previous",
        "a request without from rolls back whatever is live",
        "the watchdog's request keeps its trigger",
        "from no longer live is refused",
        "a second request about the same bad release does not walk back again",
        "previous never walks back twice to a rolled back release",
        "a rolled back release named by tag comes forward on purpose",
        "forward by tag to a newer release that went live",
        "a target that never went live is refused",
        "a superseded release never went live either",
        "a target whose revisions are gone is refused",
        "a previous whose revisions are gone is refused",
        "the live release as target is already live",
        "a previous equal to live is already live",
        "nothing live is refused",
        "from given with nothing live is refused as nothing live",
        "no previous recorded is refused",
        "no previous does not matter when a tag is named",
        "an unknown tag is refused",
        "a previous with no release record is refused",
    ],
)
def test_plan_rollback(
    rollback: RollbackRequest, live: str | None, previous: str | None, expected: RollbackPlan | str,
) -> None:
    outcome = plan_rollback(rollback, live=live, previous=previous, releases=RELEASES)
    if isinstance(expected, RollbackPlan):
        assert outcome == expected
    else:
        assert isinstance(outcome, Refusal) and outcome.kind == expected, outcome


@pytest.mark.parametrize(
    "rollback, live, previous, reason",
    [
        (request(from_tag="v1.3.0"), "v1.2.0", "v1.0.0",
         "v1.3.0 is no longer live (live: v1.2.0): nothing to do"),
        (request("v1.2.0"), "v1.2.0", "v1.0.0", "v1.2.0 is already live: nothing to do"),
        (request("v1.3.0"), "v1.2.0", "v1.0.0", "v1.3.0 never went live (state: failed)"),
        (request(), "v1.0.0", "v1.1.0", "name v1.1.0 explicitly to bring it back on purpose"),
        (request("v0.9.0"), "v1.2.0", "v1.0.0", "v0.9.0's API or worker revision no longer exists"),
        (request(), "v1.2.0", None, "no previous release recorded before v1.2.0"),
    ],
    ids=[
        "no longer live names both tags", "already live names the tag",
        "never live names the state", "a rolled back previous says how to bring it back anyway",
        "gone revisions say which release", "no previous names the live release",
    ],
)
def test_refusals_say_why_in_words_for_slack(
    rollback: RollbackRequest, live: str | None, previous: str | None, reason: str,
) -> None:
    outcome = plan_rollback(rollback, live=live, previous=previous, releases=RELEASES)
    assert isinstance(outcome, Refusal)
    assert reason in outcome.reason


def test_three_triggers_about_one_release_make_one_rollback() -> None:
    """The watchdog, an alert and a person all ask about v1.2.0; each is planned after the one before took effect."""
    live: str | None = "v1.2.0"
    previous: str | None = "v1.0.0"
    outcomes = []
    for trigger in ("watchdog", "alert", "manual"):
        outcome = plan_rollback(request(from_tag="v1.2.0", trigger=trigger), live=live, previous=previous,
                                releases=RELEASES)
        outcomes.append(outcome)
        if isinstance(outcome, RollbackPlan):
            live, previous = outcome.to_tag, None
    assert isinstance(outcomes[0], RollbackPlan)
    assert [o.kind for o in outcomes[1:] if isinstance(o, Refusal)] == [NOT_LIVE, NOT_LIVE]


@pytest.mark.parametrize(
    "live, previous, to, from_tag",
    [
        ("v1.2.0", "v1.0.0", "previous", None),
        ("v1.2.0", "v1.0.0", "previous", "v1.1.0"),
        ("v1.2.0", None, "previous", None),
        ("v1.2.0", "v1.0.0", "v1.2.0", None),
        (None, None, "previous", None),
        ("v1.2.0", "v1.0.0", "v9.9.9", None),
    ],
    ids=["a plan", "a stale request", "no previous", "already live", "nothing live", "an unknown target"],
)
def test_who_claims_to_ask_changes_nothing_that_is_allowed(
    live: str | None, previous: str | None, to: str, from_tag: str | None,
) -> None:
    """`trigger` and `requested_by` are what the publisher says of itself (Pub/Sub names no publisher): every
    claim gets the same answer, only the words that report it differ."""
    answers = set()
    for trigger in ("manual", "watchdog", "alert"):
        for by in ("health_watchdog", "someone", ""):
            outcome = plan_rollback(request(to=to, from_tag=from_tag, trigger=trigger, requested_by=by), live=live,
                                    previous=previous, releases=RELEASES)
            answers.add((outcome.kind, outcome.reason) if isinstance(outcome, Refusal)
                        else ("plan", outcome.from_tag, outcome.to_tag))
    assert len(answers) == 1
