"""Cloud Build v1: submit the release's build, read a build, and read the notifications it publishes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shared import clients
from shared.errors import InputError, from_google


@dataclass(frozen=True)
class BuildRequest:
    tag: str
    commit: str
    repository: str  # owner/name on GitHub
    image: str  # registry path without tag
    frontend_dir: str
    frontend_destination: str  # gs://bucket/prefix/ the built frontend is uploaded to
    timeout_seconds: int


@dataclass(frozen=True)
class BuildStatus:
    """What deploy_progress needs of a Cloud Build notification or a GetBuild answer."""

    build_id: str
    status: str  # QUEUED, WORKING, SUCCESS, FAILURE, INTERNAL_ERROR, TIMEOUT, CANCELLED, EXPIRED
    tag: str
    commit: str
    log_url: str
    digest: str  # sha256:... of the image, on SUCCESS
    image: str  # image@digest on SUCCESS
    detail: str  # why it failed, when it did


TERMINAL_FAILURES = frozenset({"FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})


class Builds(Protocol):
    def submit(self, request: BuildRequest) -> tuple[str, str]: ...
    def find(self, tag: str, commit: str) -> tuple[str, str] | None: ...
    def status(self, build_id: str) -> BuildStatus: ...


def build_steps(request: BuildRequest) -> list[dict[str, Any]]:
    """The botbalance build: image with the tag and the commit as tags, frontend built with pnpm and uploaded."""
    tagged = f"{request.image}:{request.tag}"
    by_commit = f"{request.image}:{request.commit}"
    return [
        {"name": "gcr.io/cloud-builders/git", "args": ["clone", f"https://github.com/{request.repository}.git", "src"]},
        {"name": "gcr.io/cloud-builders/git", "dir": "src", "args": ["checkout", request.commit]},
        {"name": "gcr.io/cloud-builders/docker", "dir": "src", "args": ["build", "-t", tagged, "-t", by_commit, "."]},
        {"name": "gcr.io/cloud-builders/docker", "args": ["push", "--all-tags", request.image]},
        {
            "name": "node:20",
            "dir": f"src/{request.frontend_dir}",
            "entrypoint": "bash",
            "args": ["-c", "corepack enable && pnpm install --frozen-lockfile && pnpm build"],
        },
        {
            "name": "gcr.io/google.com/cloudsdktool/cloud-sdk:slim",
            "args": ["gcloud", "storage", "rsync", "--recursive", f"src/{request.frontend_dir}/dist", request.frontend_destination],
        },
    ]


def parse_notification(data: dict[str, Any], attributes: dict[str, str]) -> BuildStatus:
    """A Cloud Build Pub/Sub message (the Build as camelCase JSON) -> BuildStatus; InputError if not one."""
    build_id = attributes.get("buildId") or data.get("id")
    status = attributes.get("status") or data.get("status")
    if not isinstance(build_id, str) or not isinstance(status, str):
        raise InputError(f"cloud-builds message: expected buildId and status, found {sorted(data)[:8]}")
    substitutions = data.get("substitutions") or {}
    images = ((data.get("results") or {}).get("images")) or []
    digest = ""
    image = ""
    for built in images:
        if isinstance(built, dict) and built.get("digest"):
            digest = built["digest"]
            image = f"{str(built.get('name', '')).split(':')[0]}@{digest}"
            break
    return BuildStatus(
        build_id=build_id,
        status=status,
        tag=str(substitutions.get("_TAG", "")),
        commit=str(substitutions.get("_COMMIT", "")),
        log_url=str(data.get("logUrl", "")),
        digest=digest,
        image=image,
        detail=str(data.get("statusDetail", "")),
    )


class GoogleBuilds:
    def __init__(self, project: str) -> None:
        self._project = project

    def submit(self, request: BuildRequest) -> tuple[str, str]:
        """Starts the build; returns (build id, log URL) without waiting for it."""
        from google.cloud.devtools import cloudbuild_v1
        from google.protobuf import duration_pb2

        steps = [cloudbuild_v1.BuildStep(**step) for step in build_steps(request)]
        build = cloudbuild_v1.Build(
            steps=steps,
            images=[f"{request.image}:{request.tag}", f"{request.image}:{request.commit}"],
            substitutions={
                "_TAG": request.tag,
                "_COMMIT": request.commit,
                "_IMAGE": request.image,
                "_FRONTEND_DEST": request.frontend_destination,
            },
            timeout=duration_pb2.Duration(seconds=request.timeout_seconds),
            tags=["tagship", _tag_label(request.tag)],
        )
        try:
            operation = clients.cloud_build().create_build(project_id=self._project, build=build)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"submitting the build of {request.tag}") from error
        started = operation.metadata.build
        return started.id, started.log_url

    def find(self, tag: str, commit: str) -> tuple[str, str] | None:
        """(id, log URL) of a tagship build already submitted for `tag` at `commit`, if any: a submission whose
        answer was lost (the build made, the caller gone) is found again instead of being made twice."""
        try:
            for build in clients.cloud_build().list_builds(project_id=self._project, filter=f'tags="{_tag_label(tag)}"'):
                if "tagship" in build.tags and build.substitutions.get("_COMMIT") == commit:
                    return build.id, build.log_url
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"looking for the build of {tag}") from error
        return None

    def status(self, build_id: str) -> BuildStatus:
        from google.cloud.devtools import cloudbuild_v1

        try:
            build = clients.cloud_build().get_build(project_id=self._project, id=build_id)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading build {build_id}") from error
        import json

        data = json.loads(cloudbuild_v1.Build.to_json(build))
        return parse_notification(data, {"buildId": build.id, "status": build.status.name})


def _tag_label(tag: str) -> str:
    """Cloud Build tags allow [A-Za-z0-9_.-]."""
    return "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in tag)
