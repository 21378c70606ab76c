"""HTTP probes of health endpoints and the frontend, with a timeout, on the standard library (cheap to import)."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

from shared.ports import Http, HttpAnswer

__all__ = ["Http", "HttpAnswer", "UrllibHttp"]


class UrllibHttp:
    def request(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 5.0) -> HttpAnswer:
        started = time.monotonic()
        request = urllib.request.Request(url, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own URLs
                body = response.read(1_000_000)
                return HttpAnswer(response.status, body, {k.lower(): v for k, v in response.headers.items()},
                                  (time.monotonic() - started) * 1000)
        except urllib.error.HTTPError as error:
            body = error.read(100_000) if error.fp else b""
            return HttpAnswer(error.code, body, {k.lower(): v for k, v in (error.headers or {}).items()},
                              (time.monotonic() - started) * 1000)
        except Exception as error:  # noqa: BLE001 - any failure to answer is a failed probe
            return HttpAnswer(0, b"", {}, (time.monotonic() - started) * 1000, error=f"{type(error).__name__}: {error}")
