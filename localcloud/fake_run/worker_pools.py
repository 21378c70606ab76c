"""Worker pools."""
from __future__ import annotations


class WorkerPoolsMixin:
    pass
