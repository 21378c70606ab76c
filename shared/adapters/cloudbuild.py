"""Cloud Build v1: submit the release's build, find it again, read it, and read the notifications it publishes."""
from __future__ import annotations

from typing import Any

from shared import clients
from shared.build_definition import (
    RELEASE_TAG,
    BuildRequest,
    attempt_tag,
    build_location,
    build_request,
    build_tag,
    release_build,
)
from shared.build_message import (
    STATUSES,
    TERMINAL_FAILURES,
    BuildStatus,
    image_repository,
)
from shared.errors import InputError, from_google
from shared.ports import Builds

__all__ = ["BuildRequest", "BuildStatus", "Builds", "GoogleBuilds", "TERMINAL_FAILURES", "build_request",
           "parse_notification"]

MAX_ID = 128  # a Cloud Build id is a UUID; anything longer in a message is not one


def parse_notification(data: dict[str, Any], attributes: dict[str, str]) -> BuildStatus:
    """A Cloud Build Pub/Sub message (the Build as camelCase JSON) -> BuildStatus; InputError if not one.

    What it returns is a claim: deploy_progress uses its build id and tag to look the build up, nothing else."""
    build_id = attributes.get("buildId") or data.get("id")
    status = attributes.get("status") or data.get("status")
    if not isinstance(build_id, str) or not isinstance(status, str) or not build_id or len(build_id) > MAX_ID:
        raise InputError(f"cloud-builds message: expected buildId and status, found {sorted(data)[:8]}")
    if status not in STATUSES:
        raise InputError(f"cloud-builds message: unknown status {status[:40]!r}")
    substitutions = data.get("substitutions")
    substitutions = substitutions if isinstance(substitutions, dict) else {}
    results = data.get("results")
    built = (results.get("images") if isinstance(results, dict) else None) or []
    images = tuple((str(item.get("name", ""))[:1000], str(item.get("digest", ""))[:200])
                   for item in built if isinstance(item, dict)) if isinstance(built, list) else ()
    return _status(build_id, status, str(substitutions.get("_TAG", ""))[:256],
                   str(substitutions.get("_COMMIT", ""))[:64], str(data.get("logUrl", ""))[:1000], images,
                   str(data.get("statusDetail", ""))[:1000])


def _status(build_id: str, status: str, tag: str, commit: str, log_url: str, images: tuple[tuple[str, str], ...],
            detail: str) -> BuildStatus:
    first = next(((name, digest) for name, digest in images if digest), ("", ""))
    return BuildStatus(build_id=build_id, status=status, tag=tag, commit=commit, log_url=log_url, digest=first[1],
                       image=f"{image_repository(first[0])}@{first[1]}" if first[1] else "", detail=detail,
                       images=images)


class GoogleBuilds:
    """Builds run where `build_location` says: globally, or in the region of the repository connection."""

    def __init__(self, project: str, location: str = "global") -> None:
        self._project = project
        self._location = location

    @classmethod
    def for_config(cls, config: Any) -> "GoogleBuilds":
        return cls(config.project.id, build_location(config.build.repository_connection))

    def _parent(self) -> str:
        return f"projects/{self._project}/locations/{self._location}"

    def submit(self, request: BuildRequest) -> tuple[str, str]:
        """Starts the build; returns (build id, log URL) without waiting for it."""
        import json

        from google.cloud.devtools import cloudbuild_v1

        build = cloudbuild_v1.Build.from_json(json.dumps(release_build(request, self._project)))
        location = build_location(request.repository_connection)
        where = {"parent": f"projects/{self._project}/locations/{location}"} if location != "global" else {}
        try:
            operation = clients.cloud_build().create_build(project_id=self._project, build=build, **where)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"submitting the build of {request.tag}") from error
        started = operation.metadata.build
        return started.id, started.log_url

    def find(self, tag: str, commit: str, attempt: int = 1) -> tuple[str, str] | None:
        """(id, log URL) of the first tagship build submitted for `tag` at `commit` in `attempt`, if any: a
        submission whose answer was lost (the build made, the caller gone) is found again instead of being made
        twice, and a retried release never adopts the build of the attempt that failed."""
        label = build_tag(tag)
        query = f'tags="{RELEASE_TAG}" AND tags="{label}"' + (f' AND tags="{attempt_tag(attempt)}"' if attempt > 1 else "")
        request: dict[str, Any] = {"project_id": self._project, "filter": query}
        if self._location != "global":
            request["parent"] = self._parent()
        oldest: tuple[str, str] | None = None
        try:
            for build in clients.cloud_build().list_builds(request=request):  # newest first
                other_attempt = attempt == 1 and any(t.startswith("attempt-") for t in build.tags)
                if build.substitutions.get("_TAG") == tag and build.substitutions.get("_COMMIT") == commit and not other_attempt:
                    oldest = (build.id, build.log_url)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"looking for the build of {tag}") from error
        return oldest

    def status(self, build_id: str) -> BuildStatus:
        """The build as Cloud Build answers for it now."""
        request: dict[str, Any] = {"project_id": self._project, "id": build_id}
        if self._location != "global":
            request["name"] = f"{self._parent()}/builds/{build_id}"
        try:
            build = clients.cloud_build().get_build(request=request)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading build {build_id[:MAX_ID]}") from error
        images = tuple((image.name, image.digest) for image in build.results.images)
        return _status(build.id, build.status.name, build.substitutions.get("_TAG", ""),
                       build.substitutions.get("_COMMIT", ""), build.log_url, images, build.status_detail)
