"""The local cloud's own error: a part of it could not start, answer or stop."""
from __future__ import annotations


class LocalCloudError(RuntimeError):
    pass
