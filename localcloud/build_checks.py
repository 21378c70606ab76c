"""What the real Cloud Build refuses in CreateBuild, and how it substitutes and schedules a build's steps.

Each check raises `BuildRefused` with the real service's words where they are known; the fake answers
INVALID_ARGUMENT with it and creates nothing. The rules and their sources are listed in `localcloud/FIDELITY.md`.
"""
from __future__ import annotations

import re
from typing import Iterable

from google.cloud.devtools import cloudbuild_v1

Options = cloudbuild_v1.BuildOptions

USER_KEY = re.compile(r"^_[A-Z0-9_]+$")
BUILD_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
ALWAYS_BUILT_IN = frozenset({"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "SERVICE_ACCOUNT_EMAIL",
                             "SERVICE_ACCOUNT"})
# what a trigger or a Cloud Source Repositories source gives; a manual build may set them in its substitutions
SOURCE_BUILT_IN = frozenset({"TRIGGER_NAME", "COMMIT_SHA", "REVISION_ID", "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME",
                             "BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_BUILD_CONFIG_PATH"})
MAX_SUBSTITUTIONS, MAX_KEY_BYTES, MAX_VALUE_BYTES = 200, 100, 4000
MAX_TAGS = 64  # (stricter reading)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SERVICE_ACCOUNT = re.compile(r"^projects/([^/]+)/serviceAccounts/([^/]+)$")
_ACCOUNT = re.compile(r"^([a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com"
                      r"|\d+-compute@developer\.gserviceaccount\.com|\d{10,30})$")
_CONNECTED = re.compile(r"^projects/([^/]+)/locations/([^/]+)/connections/[^/]+/repositories/[^/]+$")
_SECRET_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w][\w.-]{0,127})?$", re.ASCII)
_SECRET_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOGS_ELSEWHERE = frozenset({Options.LoggingMode.CLOUD_LOGGING_ONLY, Options.LoggingMode.STACKDRIVER_ONLY,
                            Options.LoggingMode.NONE})


class BuildRefused(Exception):
    """CreateBuild's INVALID_ARGUMENT: the message is what the caller reads."""


def check_build(build: cloudbuild_v1.Build, *, project: str, location: str) -> None:
    """Every rule below, in the order a caller would meet them; raises BuildRefused at the first broken one."""
    if not build.steps:
        raise BuildRefused("invalid build: build must have at least one step")
    check_steps(build.steps)
    check_tags(build.tags)
    check_source(build, project=project, location=location)
    check_secrets(build)
    check_service_account(build, project=project)


def check_steps(steps: Iterable[cloudbuild_v1.BuildStep]) -> None:
    """Names present, ids unique, every waitFor naming an earlier step's id (so the graph has no cycle), script
    apart from args and entrypoint, named volumes used by two steps at least."""
    seen: set[str] = set()
    volumes: dict[str, int] = {}
    for index, step in enumerate(steps):
        if not step.name:
            raise BuildRefused(f"invalid build: build step {index} must specify a name")
        for wait in step.wait_for:
            if wait == "-":
                if len(step.wait_for) > 1:
                    raise BuildRefused(f'invalid build: build step {index} waits for "-" and other steps')
            elif wait not in seen:
                raise BuildRefused(f'invalid build: build step {index} depends on "{wait}", which is not the id '
                                   "of an earlier step")
        if step.id:
            if step.id in seen or step.id == "-":
                raise BuildRefused(f'invalid build: build step {index} has a duplicate or reserved id "{step.id}"')
            seen.add(step.id)
        if step.script and (step.args or step.entrypoint):
            raise BuildRefused(f"invalid build: build step {index}: script cannot be used with args or entrypoint")
        for volume in step.volumes:
            volumes[volume.name] = volumes.get(volume.name, 0) + 1
    lonely = sorted(name for name, count in volumes.items() if count < 2)
    if lonely:
        raise BuildRefused(f'invalid build: volume "{lonely[0]}" is used by only one build step')


def check_tags(tags: Iterable[str]) -> None:
    tags = list(tags)
    if len(tags) > MAX_TAGS:
        raise BuildRefused(f"invalid build: at most {MAX_TAGS} tags, found {len(tags)}")
    for tag in tags:
        if not BUILD_TAG.match(tag):
            raise BuildRefused(f'invalid build tag "{tag[:140]}": must match format "^[\\w][\\w.-]{{0,127}}$"')


def check_source(build: cloudbuild_v1.Build, *, project: str, location: str) -> None:
    if "source" not in build or "connected_repository" not in build.source:
        return
    connected = build.source.connected_repository
    match = _CONNECTED.match(connected.repository)
    if match is None:
        raise BuildRefused("invalid build: source.connected_repository.repository: expected "
                           f"projects/*/locations/*/connections/*/repositories/*, found {connected.repository!r}")
    if match.group(1) != project:
        raise BuildRefused(f"invalid build: repository {connected.repository} is not in project {project}")
    if match.group(2) != location:
        raise BuildRefused(f"invalid build: repository {connected.repository} is in {match.group(2)}; a build "
                           f"using it must run there, not in {location}")
    if not connected.revision:
        raise BuildRefused("invalid build: source.connected_repository.revision is required")


def check_secrets(build: cloudbuild_v1.Build) -> None:
    """secretEnv names declared once in availableSecrets (or `secrets`), each declared one used by a step."""
    declared: list[str] = []
    for secret in build.available_secrets.secret_manager:
        if not _SECRET_VERSION.match(secret.version_name):
            raise BuildRefused(f"invalid build: availableSecrets.secretManager versionName {secret.version_name!r}: "
                               "expected projects/*/secrets/*/versions/*")
        declared.append(secret.env)
    for inline in build.available_secrets.inline:
        declared.extend(inline.env_map)
    for kms in build.secrets:
        declared.extend(kms.secret_env)
    for name in declared:
        if not _SECRET_ENV.match(name):
            raise BuildRefused(f"invalid build: secret environment variable name {name!r} is not valid")
    duplicates = sorted({name for name in declared if declared.count(name) > 1})
    if duplicates:
        raise BuildRefused(f'invalid build: secret environment variable "{duplicates[0]}" is defined twice')
    used = {name for step in build.steps for name in step.secret_env} | set(build.options.secret_env)
    undeclared = sorted(used - set(declared))
    if undeclared:
        raise BuildRefused(f'invalid build: secret environment variable "{undeclared[0]}" is used but not defined '
                           "in availableSecrets")
    unused = sorted(set(declared) - used)
    if unused:
        raise BuildRefused(f'invalid build: secret environment variable "{unused[0]}" is defined but not used by '
                           "any build step")


def check_service_account(build: cloudbuild_v1.Build, *, project: str) -> None:
    if not build.service_account:
        return
    match = _SERVICE_ACCOUNT.match(build.service_account)
    if match is None or not _ACCOUNT.match(match.group(2)):
        raise BuildRefused(f"invalid build: service_account {build.service_account!r}: expected "
                           "projects/{PROJECT_ID}/serviceAccounts/{EMAIL or unique id}")
    email_project = match.group(2).partition("@")[2].removesuffix(".iam.gserviceaccount.com")
    if match.group(1) not in (project, "-") or ("iam.gserviceaccount" in match.group(2) and email_project != project):
        raise BuildRefused(f"invalid build: service account {match.group(2)} is not in project {project}")
    options = build.options
    if not (build.logs_bucket or options.logging in LOGS_ELSEWHERE or options.default_logs_bucket_behavior
            == Options.DefaultLogsBucketBehavior.REGIONAL_USER_OWNED_BUCKET):
        raise BuildRefused("generic::invalid_argument: if 'build.service_account' is specified, the build must "
                           "either (a) specify 'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
                           "build.options.default_logs_bucket_behavior option, or (c) use either CLOUD_LOGGING_ONLY "
                           "/ NONE logging options")


def substitute(build: cloudbuild_v1.Build, *, builtins: dict[str, str]) -> None:
    """Checks the substitutions and applies them to the steps and images in place, as the real service stores them.

    Under MUST_MATCH (the default) a reference to nothing, a user key never referenced, and (stricter reading) a
    `$` that starts no reference are refused; under ALLOW_LOOSE a reference to nothing becomes the empty string."""
    loose = build.options.substitution_option == Options.SubstitutionOption.ALLOW_LOOSE
    values = dict(build.substitutions)
    if len(values) > MAX_SUBSTITUTIONS:
        raise BuildRefused(f"invalid build: at most {MAX_SUBSTITUTIONS} substitutions, found {len(values)}")
    for key, value in values.items():
        if not (USER_KEY.match(key) or key in SOURCE_BUILT_IN):
            raise BuildRefused(f'invalid build: invalid .substitutions field: substitution key "{key}" does not '
                               'respect format "^_[A-Z0-9_]+$" and is not an overridable built-in substitution')
        if len(key.encode()) > MAX_KEY_BYTES or len(value.encode()) > MAX_VALUE_BYTES:
            raise BuildRefused(f'invalid build: substitution "{key[:100]}" is longer than {MAX_KEY_BYTES} bytes '
                               f"(key) or {MAX_VALUE_BYTES} bytes (value)")
    known = {**builtins, **values}
    used: set[str] = set()

    def expand(text: str) -> str:
        return _expand(text, known, used, loose)

    for step in build.steps:
        step.name = expand(step.name)
        step.args[:] = [expand(arg) for arg in step.args]
        step.env[:] = [expand(env) for env in step.env]
        step.dir_ = expand(step.dir_)
        step.entrypoint = expand(step.entrypoint)
        step.script = expand(step.script)
    build.images[:] = [expand(image) for image in build.images]
    build.artifacts.images[:] = [expand(image) for image in build.artifacts.images]
    unmatched = sorted(key for key in values if USER_KEY.match(key) and key not in used)
    if unmatched and not loose:
        raise BuildRefused(f'invalid build: key "{unmatched[0]}" in the substitution data is not matched in the '
                           "template")
    for image in build.images:
        if not _IMAGE.match(image):
            raise BuildRefused(f"invalid build: invalid image name {image[:200]!r}")


def _expand(text: str, known: dict[str, str], used: set[str], loose: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1:i + 2]
        if following == "$":
            out.append("$")
            i += 2
            continue
        if following == "{":
            end = text.find("}", i + 2)
            name = text[i + 2:end] if end != -1 else ""
            if end == -1 or not _NAME.fullmatch(name):
                if loose:
                    out.append(char)
                    i += 1
                    continue
                raise BuildRefused(f"invalid build: invalid substitution {text[i:i + 40]!r} (bash-style string "
                                   "operations need options.dynamicSubstitutions)")
            i = end + 1
        else:
            match = _NAME.match(text, i + 1)
            if match is None:
                if loose:
                    out.append(char)
                    i += 1
                    continue
                raise BuildRefused(f"invalid build: a '$' that starts no substitution in {text[max(0, i - 20):i + 20]!r};"
                                   " write '$$' for a literal '$'")
            name = match.group(0)
            i = match.end()
        if name in known:
            used.add(name)
            out.append(known[name])
        elif loose:
            out.append("")
        elif name.startswith("_"):
            raise BuildRefused(f'invalid build: key in the template "{name}" is not matched in the substitution data')
        else:
            raise BuildRefused(f'generic::invalid_argument: invalid value for \'build.substitutions\': key in the '
                               f'template "{name}" is not a valid built-in substitution')
    return "".join(out)


def schedule(steps: list[cloudbuild_v1.BuildStep], durations: list[float]) -> list[tuple[float, float]]:
    """(start, end) of each step from the build's start: a step starts once every step it waits for has ended
    (no waitFor: every earlier step; `-`: at once), so the last end is the graph's critical path."""
    spans: list[tuple[float, float]] = []
    index_of = {step.id: index for index, step in enumerate(steps) if step.id}
    for index, step in enumerate(steps):
        if list(step.wait_for) == ["-"]:
            start = 0.0
        elif step.wait_for:
            start = max(spans[index_of[wait]][1] for wait in step.wait_for)
        else:
            start = max((end for _, end in spans), default=0.0)
        spans.append((start, start + durations[index]))
    return spans


def chain_length(steps: list[cloudbuild_v1.BuildStep]) -> int:
    """Steps on the longest dependency chain: the build's time split evenly over them ends at the critical path."""
    return round(max((end for _, end in schedule(steps, [1.0] * len(steps))), default=0.0))
