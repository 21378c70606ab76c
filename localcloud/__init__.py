"""A local stand-in for the parts of Google Cloud and Slack that tagship talks to (see localcloud.cloud)."""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:  # importing the package stays cheap; LocalCloud loads its parts when used
    if name in ("LocalCloud", "LocalCloudError"):
        from localcloud import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
