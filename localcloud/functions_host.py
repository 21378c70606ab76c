"""The four function targets served over real HTTP by functions-framework, one path each, as Cloud Run would.

Each target is its own functions-framework app (`create_app(target=..., source="main.py")`), mounted at
`/<target>` on one threaded werkzeug server on loopback. Pub/Sub push subscriptions deliver to these URLs.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

TARGETS = {
    "deploy_on_tag": "http",
    "deploy_progress": "cloudevent",
    "health_watchdog": "cloudevent",
    "rollback": "cloudevent",
}
SOURCE = Path(__file__).resolve().parents[1] / "main.py"


def _quiet_handler() -> Any:
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:  # the functions log for themselves
            pass

    return Quiet


class FunctionsHost:
    def __init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> "FunctionsHost":
        import functions_framework
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
        from werkzeug.serving import make_server
        from werkzeug.wrappers import Response

        apps = {
            f"/{target}": functions_framework.create_app(target=target, source=str(SOURCE), signature_type=kind)
            for target, kind in TARGETS.items()
        }
        root = DispatcherMiddleware(Response("tagship functions: /" + ", /".join(TARGETS), status=404), apps)
        self._server = make_server("127.0.0.1", 0, root, threaded=True, request_handler=_quiet_handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="functions-host", daemon=True)
        self._thread.start()
        return self

    def url(self, target: str) -> str:
        """The target's URL (with the trailing slash its mounted app answers on without a redirect)."""
        return f"{self.base_url}/{target}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
