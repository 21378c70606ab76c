"""JSON log lines that Cloud Logging reads: `severity`, `message`, `logging.googleapis.com/labels`, trace.

Every line about a release carries its tag as a label (`bind(tag=...)`), so one filter in Cloud Logging shows
a release's whole story. Secret values are masked on the way out.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from shared.text import log_value

LABELS_KEY = "logging.googleapis.com/labels"
TRACE_KEY = "logging.googleapis.com/trace"
SECRET_ENV = ("GITHUB_WEBHOOK_SECRET", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL")

_lock = threading.Lock()
_stream: TextIO | None = None


def set_stream(stream: TextIO | None) -> None:
    """Where lines go (stderr by default); tests and the demo point it elsewhere."""
    global _stream
    _stream = stream


def _mask(text: str) -> str:
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 6 and value in text:
            text = text.replace(value, "***")
    return text


MAX_FIELD = 2000  # a field from outside (a reason, an answer's body) never makes a long log line


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return log_value(value, MAX_FIELD)
    return value


class Logger:
    def __init__(self, labels: dict[str, str] | None = None, trace: str | None = None) -> None:
        self.labels = dict(labels or {})
        self.trace = trace

    def bind(self, trace: str | None = None, **labels: Any) -> "Logger":
        merged = {**self.labels, **{k: log_value(str(v), 200) for k, v in labels.items() if v is not None}}
        return Logger(merged, trace or self.trace)

    def log(self, severity: str, message: str, **fields: Any) -> None:
        entry: dict[str, Any] = {"severity": severity, "message": message, "time": time.time()}
        entry.update({key: _bounded(value) for key, value in fields.items()})
        if self.labels:
            entry[LABELS_KEY] = self.labels
        if self.trace:
            entry[TRACE_KEY] = self.trace
        line = _mask(json.dumps(entry, default=str))
        with _lock:
            stream = _stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()

    def debug(self, message: str, **fields: Any) -> None:
        self.log("DEBUG", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)


def trace_from_header(header: str | None, project: str) -> str | None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` -> `projects/P/traces/TRACE_ID`."""
    if not header:
        return None
    trace_id = header.split("/", 1)[0].strip()
    return f"projects/{project}/traces/{trace_id}" if trace_id else None


logger = Logger({"app": "tagship"})
