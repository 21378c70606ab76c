"""Pub/Sub: publish a JSON message with attributes and wait for the server's id (a publish is never fire-and-forget)."""
from __future__ import annotations

import json
from typing import Any

from shared import clients
from shared.errors import TransientError
from shared.ports import Publisher

__all__ = ["GooglePublisher", "Publisher"]


class GooglePublisher:
    def __init__(self, project: str, timeout: float = 30.0) -> None:
        self._project = project
        self._timeout = timeout

    def publish(self, topic: str, payload: dict[str, Any], attributes: dict[str, str] | None = None) -> str:
        client = clients.publisher()
        path = client.topic_path(self._project, topic)
        try:
            future = client.publish(path, json.dumps(payload).encode(), **(attributes or {}))
            return str(future.result(timeout=self._timeout))
        except Exception as error:  # noqa: BLE001 - every publish failure is worth a retry by our caller
            raise TransientError(f"publishing to {topic}: {error}") from error
