"""The five function targets served over real HTTP by functions-framework, one path each, as Cloud Run would.

Each target is its own functions-framework app (`create_app(target=..., source="main.py")`), mounted at
`/<target>/` on one threaded server on loopback. Pub/Sub push subscriptions deliver to these URLs.

Each invocation has the function's timeout (`timeout`, the real platform's 540 s scaled down for the local cloud):
the real platform ends an invocation there and its answer is lost. The host cannot end a thread, so it takes the
answer away instead: an invocation that outlasts its timeout is answered 504, as the platform does, and recorded in
`overran`, which the end-to-end tests require to be empty.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from localcloud.http_server import LoopbackServer
from shared.deadline import TIMEOUT_ENV

TARGETS = {
    "deploy_on_tag": "http",
    "slack_actions": "http",
    "deploy_progress": "cloudevent",
    "health_watchdog": "cloudevent",
    "rollback": "cloudevent",
}
SOURCE = Path(__file__).resolve().parents[1] / "main.py"


class FunctionsHost:
    def __init__(self, timeout: float = 540.0) -> None:
        self._http: LoopbackServer | None = None
        self.timeout = timeout
        self.overran: list[tuple[str, float]] = []  # (target, seconds) of each invocation past its timeout
        self.invocations: dict[str, int] = {target: 0 for target in TARGETS}
        self._lock = threading.Lock()

    def _timed(self, target: str, app: Any) -> Callable[..., Iterable[bytes]]:
        def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            answer: list[Any] = []
            began = time.monotonic()
            body = b"".join(app(environ, lambda status, headers, exc_info=None: answer.append((status, headers))))
            took = time.monotonic() - began
            with self._lock:
                self.invocations[target] += 1
                if took > self.timeout:
                    self.overran.append((target, took))
            if took > self.timeout:
                start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
                return [f"{target} outlasted its {self.timeout:.1f}s timeout".encode()]
            status, headers = answer[0]
            start_response(status, headers)
            return [body]
        return timed

    def start(self) -> "FunctionsHost":
        import functions_framework
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
        from werkzeug.wrappers import Response

        apps = {
            f"/{target}": self._timed(target, functions_framework.create_app(target=target, source=str(SOURCE),
                                                                             signature_type=kind))
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


def main() -> None:
    """`python -m localcloud.functions_host`: the five targets in a process of their own, configured by the
    environment alone (as a Cloud Run instance is), for a harness that kills the process outright. Prints
    `serving <base URL>` once ready; the functions' JSON log lines go to stderr; runs until killed."""
    import logging
    import sys

    logging.disable(logging.CRITICAL)  # Flask's tracebacks of provoked 500s; the functions' own lines still go out
    host = FunctionsHost(timeout=float(os.environ.get(TIMEOUT_ENV, "540"))).start()
    print(f"serving {host.base_url}", flush=True)
    threading.Event().wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
