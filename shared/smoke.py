"""What one answer of the candidate's health endpoints means. Pure.

The smoke test reaches the candidate on its tag URL (`https://TAG---SERVICE-HASH-REGION.a.run.app`). Django
refuses any host outside `ALLOWED_HOSTS` with a 400 before a view runs (with `DEBUG = False` its body is only
"Bad Request (400)"), so a release whose code is fine fails its smoke test when the setting names only the
service's main host. That answer is a configuration fault, not an unhealthy release: it is said as such, with the
fix, and probing again cannot change it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

EXCERPT = 120


@dataclass(frozen=True)
class ProbeAnswer:
    ok: bool
    detail: str
    final: bool = False  # probing again cannot change it: the smoke test ends now


def judge_answer(path: str, status: int, body: bytes, url: str, error: str = "") -> ProbeAnswer:
    """One answer from `url` (the health `path` on the candidate)."""
    if status == 200:
        return ProbeAnswer(True, "ok")
    if status == 400 and refused_host(body):
        host = (urlsplit(url).hostname or "")[:253]
        return ProbeAnswer(False, f"{path} answered 400 Bad Request: Django refuses the host {host} "
                                  "(DisallowedHost); add '.a.run.app' (or that host) to ALLOWED_HOSTS so the "
                                  "candidate's tag URL can be tested", final=True)
    return ProbeAnswer(False, f"{path} answered {status or error[:EXCERPT] or 'nothing'}: {failing_part(body)}")


def refused_host(body: bytes) -> bool:
    """Django's answer to a disallowed host: its DEBUG page names DisallowedHost; without DEBUG, the bare page."""
    head = body[:4096].decode("utf-8", "replace")
    return ("DisallowedHost" in head or "Invalid HTTP_HOST header" in head
            or "<title>Bad Request (400)</title>" in head)


def failing_part(body: bytes) -> str:
    """The failing components of a health answer, or a bounded excerpt of what it said."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:80].decode("utf-8", "replace")
    components = data.get("components") if isinstance(data, dict) else None
    if isinstance(components, dict):
        failing = [f"{str(k)[:40]}: {str(v)[:40]}" for k, v in list(components.items())[:10] if v != "ok"]
        if failing:
            return ", ".join(failing)
    return json.dumps(data)[:EXCERPT]
