"""The four function targets served over real HTTP by functions-framework, one path each, as Cloud Run would.

Each target is its own functions-framework app (`create_app(target=..., source="main.py")`), mounted at
`/<target>/` on one threaded server on loopback. Pub/Sub push subscriptions deliver to these URLs.
"""
from __future__ import annotations

from pathlib import Path

from localcloud.http_server import LoopbackServer

TARGETS = {
    "deploy_on_tag": "http",
    "deploy_progress": "cloudevent",
    "health_watchdog": "cloudevent",
    "rollback": "cloudevent",
}
SOURCE = Path(__file__).resolve().parents[1] / "main.py"


class FunctionsHost:
    def __init__(self) -> None:
        self._http: LoopbackServer | None = None

    def start(self) -> "FunctionsHost":
        import functions_framework
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
        from werkzeug.wrappers import Response

        apps = {
            f"/{target}": functions_framework.create_app(target=target, source=str(SOURCE), signature_type=kind)
            for target, kind in TARGETS.items()
        }
        root = DispatcherMiddleware(Response("tagship functions: /" + ", /".join(TARGETS), status=404), apps)
        self._http = LoopbackServer(root, "localcloud-functions")
        self._http.start()
        return self

    @property
    def base_url(self) -> str:
        assert self._http is not None, "the functions host is not serving"
        return self._http.base_url

    def url(self, target: str) -> str:
        """The target's URL (with the trailing slash its mounted app answers on without a redirect)."""
        return f"{self.base_url}/{target}/"

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None
