"""A local stand-in for the parts of Google Cloud and Slack that tagship talks to (see localcloud.cloud)."""
from __future__ import annotations

import os
from typing import Any

# gRPC's C core logs connection chatter (GOAWAY on shutdown) at INFO; the local cloud has nothing to learn from it.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def __getattr__(name: str) -> Any:  # importing the package stays cheap; LocalCloud loads its parts when used
    if name in ("LocalCloud", "LocalCloudError"):
        from localcloud import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
