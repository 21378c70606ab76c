"""The fake Monitoring alert policies and notification channels, through the real monitoring_v3 clients over gRPC."""
from __future__ import annotations

import json
from concurrent import futures
from typing import Any, Iterator

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.alert_policy_service.transports.grpc import (
    AlertPolicyServiceGrpcTransport,
)
from google.cloud.monitoring_v3.services.notification_channel_service.transports.grpc import (
    NotificationChannelServiceGrpcTransport,
)

from localcloud.fake_alerting import FakeAlerting
from localcloud.scenario import Scenario
from shared.config import load
from shared.install_policy import alert_policy

PROJECT = "botbalance-prod"
NAME = f"projects/{PROJECT}"
TOPIC = f"{NAME}/topics/tagship-rollback"


@pytest.fixture
def clients() -> Iterator[tuple[Any, Any]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    for handler in FakeAlerting(Scenario(), project=PROJECT).handlers():
        server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield (monitoring_v3.NotificationChannelServiceClient(
                   transport=NotificationChannelServiceGrpcTransport(channel=channel)),
               monitoring_v3.AlertPolicyServiceClient(transport=AlertPolicyServiceGrpcTransport(channel=channel)))
    finally:
        channel.close()
        server.stop(grace=None)


def pubsub_channel(topic: str = TOPIC) -> monitoring_v3.NotificationChannel:
    return monitoring_v3.NotificationChannel(type_="pubsub", display_name="tagship rollback", labels={"topic": topic})


def test_setups_channel_and_policy_are_created_named_by_the_api_and_listed(clients):
    channels, policies = clients
    channel = channels.create_notification_channel(name=NAME, notification_channel=pubsub_channel())
    assert channel.name.startswith(f"{NAME}/notificationChannels/") and channel.enabled is True
    policy = monitoring_v3.AlertPolicy.from_json(json.dumps(alert_policy(load())))
    policy.notification_channels = [channel.name]
    created = policies.create_alert_policy(name=NAME, alert_policy=policy)
    assert created.name.startswith(f"{NAME}/alertPolicies/") and created.user_labels["tagship_rollback"] == "true"
    assert [p.name for p in policies.list_alert_policies(name=NAME)] == [created.name]
    assert [c.name for c in channels.list_notification_channels(name=NAME)] == [channel.name]
    assert policies.get_alert_policy(name=created.name).notification_channels == [channel.name]


@pytest.mark.parametrize("channel", [
    pytest.param(monitoring_v3.NotificationChannel(display_name="x"), id="a channel without a type"),
    pytest.param(monitoring_v3.NotificationChannel(type_="carrier_pigeon"), id="a type Monitoring does not know"),
    pytest.param(pubsub_channel("tagship-rollback"), id="a pubsub channel whose topic is not a topic's full name"),
])
def test_a_channel_the_api_refuses_is_invalid_argument_and_creates_nothing(clients, channel):
    channels, _ = clients
    with pytest.raises(exceptions.InvalidArgument):
        channels.create_notification_channel(name=NAME, notification_channel=channel)
    assert list(channels.list_notification_channels(name=NAME)) == []


def _condition() -> monitoring_v3.AlertPolicy.Condition:
    return monitoring_v3.AlertPolicy.Condition(display_name="c", condition_absent=monitoring_v3.AlertPolicy.Condition.MetricAbsence(
        filter='metric.type="x"', duration={"seconds": 120}))


@pytest.mark.parametrize("policy", [
    pytest.param(monitoring_v3.AlertPolicy(conditions=[_condition()]), id="a policy without a display name"),
    pytest.param(monitoring_v3.AlertPolicy(display_name="p"), id="a policy without a condition"),
    pytest.param(monitoring_v3.AlertPolicy(display_name="p", conditions=[_condition(), _condition()]),
                 id="two conditions and no combiner"),
    pytest.param(monitoring_v3.AlertPolicy(display_name="p", conditions=[_condition()],
                                           notification_channels=[f"{NAME}/notificationChannels/404"]),
                 id="a notification channel that does not exist"),
])
def test_a_policy_the_api_refuses_is_invalid_argument_and_creates_nothing(clients, policy):
    _, policies = clients
    with pytest.raises(exceptions.InvalidArgument):
        policies.create_alert_policy(name=NAME, alert_policy=policy)
    assert list(policies.list_alert_policies(name=NAME)) == []


def test_another_project_is_denied_and_a_filter_is_refused_rather_than_answered_wrong(clients):
    channels, policies = clients
    with pytest.raises(exceptions.PermissionDenied):
        list(policies.list_alert_policies(name="projects/someone-else"))
    with pytest.raises(exceptions.InvalidArgument):
        list(channels.list_notification_channels(request={"name": NAME, "filter": 'type="pubsub"'}))
    with pytest.raises(exceptions.NotFound):
        policies.get_alert_policy(name=f"{NAME}/alertPolicies/1")
