"""A fake of Cloud Monitoring v3's AlertPolicyService and NotificationChannelService: create, get and list, as
`python main.py setup` creates them and `python main.py doctor` reads them (the real proto types over gRPC).

What it refuses, as the real API does (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies,
.../projects.notificationChannels, https://cloud.google.com/monitoring/support/notification-options#pubsub):
- a `name` that is not `projects/PROJECT_ID` (INVALID_ARGUMENT), another project (PERMISSION_DENIED);
- a channel without a type, of a type it does not know, or a `pubsub` channel without a `topic` label of the form
  `projects/P/topics/T` (INVALID_ARGUMENT);
- a policy without a display name or a condition, with more than one condition and no combiner, or naming a
  notification channel that does not exist in the project (INVALID_ARGUMENT; stricter reading: the real API names
  the channel it cannot find);
- a Get of a name it never gave (NOT_FOUND); a List with `filter` or `order_by` (INVALID_ARGUMENT: not modelled,
  so never answered wrongly).
Names are generated as the real API does (`projects/P/alertPolicies/ID`, `projects/P/notificationChannels/ID`);
the user's `name` on create is ignored. Not modelled: update, delete, verification, paging (every list is one page).
"""
from __future__ import annotations

import itertools
import re
import threading

import grpc
from google.cloud import monitoring_v3

from localcloud.grpc_kit import Abort, service_handler
from localcloud.scenario import Scenario

CHANNEL_TYPES = ("pubsub", "email", "sms", "slack", "webhook_tokenauth", "webhook_basicauth", "pagerduty",
                 "campfire", "hipchat")
_TOPIC = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}$")
_Combiner = monitoring_v3.AlertPolicy.ConditionCombinerType


class FakeAlerting:
    def __init__(self, scenario: Scenario, *, project: str) -> None:
        self.scenario = scenario
        self.project = project
        self._lock = threading.Lock()
        self._ids = itertools.count(1000)
        self.channels: dict[str, monitoring_v3.NotificationChannel] = {}
        self.policies: dict[str, monitoring_v3.AlertPolicy] = {}

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        m = monitoring_v3
        return [
            service_handler(self.scenario, "google.monitoring.v3.NotificationChannelService", {
                "CreateNotificationChannel": (self.create_channel, m.CreateNotificationChannelRequest,
                                              m.NotificationChannel),
                "GetNotificationChannel": (self.get_channel, m.GetNotificationChannelRequest, m.NotificationChannel),
                "ListNotificationChannels": (self.list_channels, m.ListNotificationChannelsRequest,
                                             m.ListNotificationChannelsResponse),
            }),
            service_handler(self.scenario, "google.monitoring.v3.AlertPolicyService", {
                "CreateAlertPolicy": (self.create_policy, m.CreateAlertPolicyRequest, m.AlertPolicy),
                "GetAlertPolicy": (self.get_policy, m.GetAlertPolicyRequest, m.AlertPolicy),
                "ListAlertPolicies": (self.list_policies, m.ListAlertPoliciesRequest, m.ListAlertPoliciesResponse),
            }),
        ]

    def _project(self, name: str) -> None:
        match = re.fullmatch(r"projects/([^/]+)", name)
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"name: expected projects/PROJECT_ID, found {name!r}")
        if match.group(1) != self.project:
            raise Abort(grpc.StatusCode.PERMISSION_DENIED, f"Permission denied (or the resource may not exist): {name}")

    @staticmethod
    def _listing_only(request: monitoring_v3.ListAlertPoliciesRequest | monitoring_v3.ListNotificationChannelsRequest) -> None:
        if request.filter or request.order_by:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "filter and order_by are not modelled by the local cloud")

    # -- notification channels ---------------------------------------------------------------------------------
    def create_channel(self, request: monitoring_v3.CreateNotificationChannelRequest) -> monitoring_v3.NotificationChannel:
        self._project(request.name)
        channel = monitoring_v3.NotificationChannel(request.notification_channel)
        if not channel.type_:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "notification_channel.type: required")
        if channel.type_ not in CHANNEL_TYPES:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"notification_channel.type: unknown type {channel.type_!r}")
        if channel.type_ == "pubsub" and not _TOPIC.match(channel.labels.get("topic", "")):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "a pubsub channel needs the label topic=projects/P/topics/T, "
                        f"found {channel.labels.get('topic', '')!r}")
        with self._lock:
            channel.name = f"{request.name}/notificationChannels/{next(self._ids)}"
            if "enabled" not in channel:
                channel.enabled = True
            self.channels[channel.name] = channel
        return channel

    def get_channel(self, request: monitoring_v3.GetNotificationChannelRequest) -> monitoring_v3.NotificationChannel:
        with self._lock:
            if request.name not in self.channels:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"no notification channel {request.name}")
            return self.channels[request.name]

    def list_channels(self, request: monitoring_v3.ListNotificationChannelsRequest) -> monitoring_v3.ListNotificationChannelsResponse:
        self._project(request.name)
        self._listing_only(request)
        with self._lock:
            found = list(self.channels.values())
        return monitoring_v3.ListNotificationChannelsResponse(notification_channels=found, total_size=len(found))

    # -- alert policies ----------------------------------------------------------------------------------------
    def create_policy(self, request: monitoring_v3.CreateAlertPolicyRequest) -> monitoring_v3.AlertPolicy:
        self._project(request.name)
        policy = monitoring_v3.AlertPolicy(request.alert_policy)
        if not policy.display_name:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_policy.display_name: required")
        if not policy.conditions:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_policy.conditions: at least one condition is required")
        if len(policy.conditions) > 1 and policy.combiner == _Combiner.COMBINE_UNSPECIFIED:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_policy.combiner: required with more than one condition")
        with self._lock:
            for channel in policy.notification_channels:
                if channel not in self.channels:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"notification channel {channel} does not exist")
            policy.name = f"{request.name}/alertPolicies/{next(self._ids)}"
            for index, condition in enumerate(policy.conditions):
                condition.name = f"{policy.name}/conditions/{index + 1}"
            if "enabled" not in policy:
                policy.enabled = True
            self.policies[policy.name] = policy
        return policy

    def get_policy(self, request: monitoring_v3.GetAlertPolicyRequest) -> monitoring_v3.AlertPolicy:
        with self._lock:
            if request.name not in self.policies:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"no alert policy {request.name}")
            return self.policies[request.name]

    def list_policies(self, request: monitoring_v3.ListAlertPoliciesRequest) -> monitoring_v3.ListAlertPoliciesResponse:
        self._project(request.name)
        self._listing_only(request)
        with self._lock:
            found = list(self.policies.values())
        return monitoring_v3.ListAlertPoliciesResponse(alert_policies=found, total_size=len(found))
