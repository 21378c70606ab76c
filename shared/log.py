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
MAX_LABEL = 200


def _bounded(value: Any, limit: int = MAX_FIELD) -> Any:
    """`value` itself, or a string cut (see `log_value`) so that the line writes it in about `limit` characters at
    most: JSON writes a control or non-ASCII character as `\\uXXXX`, one outside the BMP as two, so a field is cut
    by what it costs in the line, not only by its length."""
    if not isinstance(value, str):
        return value
    keep = limit
    while True:
        text = log_value(value, keep)
        if keep <= 16 or len(json.dumps(text)) <= limit + 64:  # 64: room for the marker saying what was cut
            return text
        keep //= 2


class Logger:
    def __init__(self, labels: dict[str, str] | None = None, trace: str | None = None) -> None:
        self.labels = dict(labels or {})
        self.trace = trace

    def bind(self, trace: str | None = None, **labels: Any) -> Logger:
        merged = {**self.labels, **{k: _bounded(str(v), MAX_LABEL) for k, v in labels.items() if v is not None}}
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
