"""The composition root: the only place that knows which concrete adapter stands behind each port.

Everything is built on first use, so a GitHub `ping` or a refused signature imports no Google library.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

from shared.config import Config, Secrets

if TYPE_CHECKING:
    from shared.adapters.slack import Notifier
    from shared.deployment_status import DeploymentStatus, NoDeploymentStatus
    from shared.ports import (
        Builds,
        CloudRun,
        Deployments,
        Http,
        Inventory,
        Metrics,
        Objects,
        ProjectReader,
        Publisher,
        SlackAccess,
    )
    from shared.state import StateStore


@dataclass
class Services:
    config: Config
    secrets: Secrets
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    overrides: dict[str, Any] = field(default_factory=dict)

    def _pick(self, name: str, build: Callable[[], Any]) -> Any:
        """The override for `name` (a test's fake of the port), else the real adapter built now."""
        return self.overrides[name] if name in self.overrides else build()

    @cached_property
    def store(self) -> "StateStore":
        from shared.adapters.storage import GcsRecords
        from shared.state import StateStore

        return self._pick("store", lambda: StateStore(GcsRecords(self.config.project.id, self.config.state.bucket)))

    @cached_property
    def run(self) -> "CloudRun":
        from shared.adapters.cloudrun import GoogleCloudRun

        c = self.config
        return self._pick("run", lambda: GoogleCloudRun(
            c.project.id, c.project.region,
            worker_pools=frozenset({c.worker.service} if c.worker.kind == "pool" else ()),
            containers={name: container for name, container in (
                (c.api.service, c.api.container), (c.migrations.job, c.api.container),
                (c.worker.service, c.worker.container)) if container},
        ))

    @cached_property
    def builds(self) -> "Builds":
        from shared.adapters.cloudbuild import GoogleBuilds

        return self._pick("builds", lambda: GoogleBuilds.for_config(self.config))

    @cached_property
    def objects(self) -> "Objects":
        from shared.adapters.storage import GcsObjects

        return self._pick("objects", lambda: GcsObjects(self.config.project.id))

    @cached_property
    def publisher(self) -> "Publisher":
        from shared.adapters.pubsub import GooglePublisher

        return self._pick("publisher", lambda: GooglePublisher(self.config.project.id))

    @cached_property
    def metrics(self) -> "Metrics":
        from shared.adapters.monitoring import GoogleMetrics

        return self._pick("metrics", lambda: GoogleMetrics(self.config.project.id))

    @cached_property
    def http(self) -> "Http":
        from shared.adapters.http_probe import UrllibHttp

        return self._pick("http", UrllibHttp)

    @cached_property
    def notifier(self) -> "Notifier":
        from shared.adapters.slack import notifier_for

        return self._pick(
            "notifier",
            lambda: notifier_for(
                self.secrets.slack_bot_token,
                self.secrets.slack_webhook_url,
                self.config.slack.channel,
                self.config.slack.timeout_seconds,
            ),
        )

    @cached_property
    def project_reader(self) -> "ProjectReader":
        from shared.adapters.project_google import GoogleProjectReader

        return self._pick("project_reader", lambda: GoogleProjectReader(self.config.project.id,
                                                                        self.config.project.region))

    @cached_property
    def inventory(self) -> "Inventory":
        from shared.adapters.gcloud_inventory import GcloudInventory

        return self._pick("inventory", lambda: GcloudInventory(self.config.project.id))

    @cached_property
    def slack_access(self) -> "SlackAccess | None":
        """Slack as doctor reads it; None without a bot token (a webhook cannot be asked anything)."""
        from shared.adapters.slack_access import SlackWebAccess

        token = self.secrets.slack_bot_token
        return self._pick("slack_access", lambda: SlackWebAccess(token, self.config.slack.timeout_seconds)
                          if token else None)

    @cached_property
    def deployments(self) -> "Deployments | None":
        """GitHub's deployments of the repository; None when github.deployments is off or no credential is set
        (said once in the log, with what to set)."""
        from shared.log import logger

        def build() -> "Deployments | None":
            github, secrets = self.config.github, self.secrets
            if not github.deployments:
                return None
            if github.app_id and not secrets.github_app_private_key:
                logger.error("github.deployments is on with github.app_id but GITHUB_APP_PRIVATE_KEY is not set: "
                             "no deployment statuses until it is mounted from Secret Manager")
                return None
            if not github.app_id and not secrets.github_token:
                logger.error("github.deployments is on but neither GITHUB_TOKEN nor github.app_id (with "
                             "GITHUB_APP_PRIVATE_KEY) is set: no deployment statuses until one is")
                return None
            from shared import clients
            from shared.adapters.github import GithubDeployments

            client = clients.github(github.api_url, github.timeout_seconds, token=secrets.github_token,
                                    app_id=github.app_id, installation_id=github.installation_id,
                                    private_key=secrets.github_app_private_key)
            return GithubDeployments(client, github.repository)

        return self._pick("deployments", build)

    @cached_property
    def deployment_status(self) -> "DeploymentStatus | NoDeploymentStatus":
        """What keeps each release's GitHub deployment following it; a null object when there are no deployments."""
        from shared.deployment_status import DeploymentStatus, NoDeploymentStatus

        deployments = self.deployments if self.config.github.deployments else None
        return DeploymentStatus(self, deployments) if deployments is not None else NoDeploymentStatus()
