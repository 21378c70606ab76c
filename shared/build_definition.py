"""The release build as Cloud Build takes it: a graph of steps over the repository at one commit.

Pure: `release_build` returns the Build in the REST API's JSON form (the build config file schema, camelCase), which
the adapter hands to `cloudbuild_v1.Build.from_json`. Cloud Build substitutes `$NAME` and `${NAME}` in steps and
images before it runs anything and, under its default `MUST_MATCH`, refuses the build when a user substitution is
never referenced or a reference names nothing; so every `_KEY` below is referenced by a step, and every literal `$`
that comes from the config or a shell script is written `$$`.

The graph: the source first (a 2nd-gen repository connection fetches it before any step runs; otherwise a shallow
fetch of the one commit, authenticated with a token from Secret Manager when one is configured). Then the image and
the frontend side by side: the image reuses the previous release's layers (BuildKit inline cache on `IMAGE:latest`)
and is pushed as soon as it is built, while the frontend installs, builds and uploads. The image is also listed in
`images`, so Cloud Build reports its digest in `results.images` and tagship deploys by digest.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError, InputError
from shared.frontend import release_prefix
from shared.release import release_identity

TOKEN_ENV = "GITHUB_TOKEN"  # the secretEnv name the fetch step reads; never a substitution, always written $$
CACHE_TAG = "latest"
GIT = "gcr.io/cloud-builders/git"
DOCKER = "gcr.io/cloud-builders/docker"
NODE = "node:20"
CLOUD_SDK = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
RELEASE_TAG = "tagship"  # the build tag every release build carries, beside its own
SUBSTITUTIONS = ("_TAG", "_IMAGE_TAG", "_COMMIT", "_IMAGE", "_FRONTEND_DEST")

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_BUILD_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_REPOSITORY = re.compile(r"^[\w.-]+/[\w.-]+$", re.ASCII)
_CONNECTION = re.compile(r"^projects/([^/]+)/locations/([^/]+)/connections/[^/]+/repositories/[^/]+$")


@dataclass(frozen=True)
class BuildRequest:
    tag: str
    commit: str
    repository: str  # owner/name on GitHub
    image: str  # registry path without tag
    frontend_dir: str
    frontend_destination: str  # gs://bucket/prefix/ the built frontend is uploaded to
    timeout_seconds: int
    context: str = "."  # docker build context, relative to the repository root
    dockerfile: str = "Dockerfile"  # relative to the context
    repository_connection: str = ""  # projects/P/locations/R/connections/C/repositories/N, or "" to fetch by git
    github_token_secret: str = ""  # Secret Manager secret of a token that reads the repository, or ""
    service_account: str = ""  # email of the account the build runs as, or "" for Cloud Build's default
    attempt: int = 1  # the release's attempt: a retried tag's build is told apart from the failed one's


def attempt_tag(attempt: int) -> str:
    """The build tag of a retried release's attempt (a first attempt carries none)."""
    return f"attempt-{attempt}"


def build_request(config: Any, tag: str, commit: str, attempt: int = 1) -> BuildRequest:
    """The request for one release's attempt, from the loaded config."""
    build = config.build
    account = f"{build.service_account}@{config.project.id}.iam.gserviceaccount.com" if build.service_account else ""
    return BuildRequest(
        tag=tag, commit=commit, repository=config.github.repository, image=build.image,
        frontend_dir=build.frontend_dir,
        frontend_destination=f"gs://{config.state.bucket}/"
                             f"{release_prefix(config.frontend.releases_prefix, release_identity(tag, attempt))}",
        timeout_seconds=build.timeout_seconds, context=build.context, dockerfile=build.dockerfile,
        repository_connection=build.repository_connection, github_token_secret=build.github_token_secret,
        service_account=account, attempt=attempt,
    )


def build_location(repository_connection: str) -> str:
    """Where the build runs: a 2nd-gen connection's builds run in the connection's region, others globally."""
    match = _CONNECTION.match(repository_connection)
    return match.group(2) if match else "global"


def build_tag(tag: str) -> str:
    """A git tag as a Cloud Build tag (`^[\\w][\\w.-]{0,127}$`); lossy, so a build is matched by `_TAG` too. A label
    that would read as a retried attempt's build tag (`attempt-2`, see `attempt_tag`) opens with a `t` instead."""
    label = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "_.-" else "-" for ch in tag[:128])
    if not label or not (label[0].isalnum() or label[0] == "_") or label.startswith("attempt-"):
        label = "t" + label
    return label[:128]


def image_tag(tag: str) -> str:
    """A git tag as its image's tag (Docker: `[\\w][\\w.-]{0,127}`, ASCII). A tag that is one already stays as it is
    (`v1.4.0`); any other (`release/1.0`, `v1.0.0+build.5`, one outside ASCII or too long, `latest`) is read as far as
    it can be, with 8 hex characters of a SHA-256 of the exact tag after it, so two tags never share one image tag."""
    if _BUILD_TAG.match(tag) and tag != CACHE_TAG:
        return tag
    label = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "_.-" else "-" for ch in tag[:119])
    if not label or not (label[0].isalnum() or label[0] == "_"):
        label = "t" + label
    return f"{label[:119]}-{hashlib.sha256(tag.encode()).hexdigest()[:8]}"


def release_build(request: BuildRequest, project: str) -> dict[str, Any]:
    """The Build for `request` in project `project`; ConfigError / InputError when it could not run as meant."""
    _check(request)
    context = _relative(request.context, "build.context")
    dockerfile = _relative(posixpath.join(context, request.dockerfile), "build.dockerfile")
    frontend = _relative(request.frontend_dir, "build.frontend_dir")
    fetch = _fetch_step(request, project)
    after_source = [fetch["id"]] if fetch else ["-"]
    # pnpm's store outside /workspace (a docker context of "." never sees it), kept from install to build
    pnpm_env, pnpm_volumes = ["npm_config_store_dir=/pnpm-store"], [{"name": "pnpm-store", "path": "/pnpm-store"}]
    steps: list[dict[str, Any]] = [fetch] if fetch else []
    steps += [
        {
            "id": "image", "name": DOCKER, "waitFor": after_source, "env": ["DOCKER_BUILDKIT=1"],
            "args": ["build", "--cache-from", f"${{_IMAGE}}:{CACHE_TAG}", "--build-arg", "BUILDKIT_INLINE_CACHE=1",
                     "--label", "org.opencontainers.image.revision=${_COMMIT}",
                     "--label", "org.opencontainers.image.version=${_TAG}",
                     "--file", _literal(dockerfile), "--tag", "${_IMAGE}:${_IMAGE_TAG}",
                     "--tag", f"${{_IMAGE}}:{CACHE_TAG}", _literal(context)],
        },
        {"id": "push", "name": DOCKER, "waitFor": ["image"], "args": ["push", "--all-tags", "${_IMAGE}"]},
        {"id": "frontend-install", "name": NODE, "dir": _literal(frontend), "entrypoint": "bash",
         "waitFor": after_source, "env": pnpm_env, "volumes": pnpm_volumes,
         "args": ["-c", "corepack enable && pnpm install --frozen-lockfile"]},
        {"id": "frontend-build", "name": NODE, "dir": _literal(frontend), "entrypoint": "bash",
         "waitFor": ["frontend-install"], "env": pnpm_env, "volumes": pnpm_volumes,
         "args": ["-c", "corepack enable && pnpm build"]},
        {"id": "frontend-upload", "name": CLOUD_SDK, "waitFor": ["frontend-build"],
         "args": ["gcloud", "storage", "rsync", "--recursive", f"{_literal(frontend)}/dist", "${_FRONTEND_DEST}"]},
    ]
    build: dict[str, Any] = {
        "steps": steps,
        "images": ["${_IMAGE}:${_IMAGE_TAG}", f"${{_IMAGE}}:{CACHE_TAG}"],
        "substitutions": {"_TAG": request.tag, "_IMAGE_TAG": image_tag(request.tag), "_COMMIT": request.commit, "_IMAGE": request.image,
                          "_FRONTEND_DEST": request.frontend_destination},
        "timeout": f"{int(request.timeout_seconds)}s",
        "tags": [RELEASE_TAG, build_tag(request.tag)] + ([attempt_tag(request.attempt)] if request.attempt > 1 else []),
    }
    if request.repository_connection:
        build["source"] = {"connectedRepository": {"repository": request.repository_connection,
                                                   "revision": request.commit}}
    elif request.github_token_secret:
        build["availableSecrets"] = {"secretManager": [{
            "versionName": f"projects/{project}/secrets/{request.github_token_secret}/versions/latest",
            "env": TOKEN_ENV}]}
    if request.service_account:
        # a user-specified account needs its logs somewhere other than the default bucket, or the build is refused
        build["serviceAccount"] = f"projects/{project}/serviceAccounts/{request.service_account}"
        build["options"] = {"logging": "CLOUD_LOGGING_ONLY"}
    return build


def _fetch_step(request: BuildRequest, project: str) -> dict[str, Any] | None:
    """The commit fetched into /workspace, or None when the connection fetches it. The token, when there is one,
    travels only as an HTTP header of this one git command: it is not written to .git/config (which a context of
    "." would put in the image), and the script never echoes it (no `set -x`)."""
    if request.repository_connection:
        return None
    url = f"https://github.com/{request.repository}.git"
    auth = ""
    step: dict[str, Any] = {"id": "fetch", "name": GIT, "entrypoint": "bash", "waitFor": ["-"]}
    if request.github_token_secret:
        header = (f"http.https://github.com/.extraheader=AUTHORIZATION: basic "
                  f"$$(printf 'x-access-token:%s' \"$${TOKEN_ENV}\" | base64 -w0)")
        auth = f'-c "{header}" '
        step["secretEnv"] = [TOKEN_ENV]
    script = ("set -eu && git init --quiet . && "
              f"git {auth}fetch --quiet --depth 1 {url} ${{_COMMIT}} && git checkout --quiet FETCH_HEAD")
    step["args"] = ["-c", script]
    return step


def _check(request: BuildRequest) -> None:
    if not _SHA.match(request.commit):  # it reaches a shell script through ${_COMMIT}
        raise InputError(f"build: expected a commit sha of 7 to 64 hex digits, found {request.commit[:80]!r}")
    if not _REPOSITORY.match(request.repository):
        raise ConfigError(f"github.repository: expected owner/name, found {request.repository[:80]!r}")
    if request.repository_connection and not _CONNECTION.match(request.repository_connection):
        raise ConfigError("build.repository_connection: expected projects/P/locations/R/connections/C/"
                          f"repositories/NAME, found {request.repository_connection[:120]!r}")
    if not request.tag or "\n" in request.tag:
        raise InputError(f"build: expected a tag, found {request.tag[:80]!r}")


def _relative(path: str, key: str) -> str:
    """A directory or file inside the repository, normalised; ConfigError for one outside it."""
    normal = posixpath.normpath(path or ".")
    if normal.startswith("/") or normal == ".." or normal.startswith("../") or "\n" in normal:
        raise ConfigError(f"{key}: expected a path inside the repository, found {path[:120]!r}")
    return normal


def _literal(text: str) -> str:
    """Config text placed in a step, with `$` escaped so Cloud Build's substitution leaves it as written."""
    return text.replace("$", "$$")
