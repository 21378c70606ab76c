"""Doctor's reads of what has no client library in tagship's dependencies: the APIs enabled (Service Usage), IAM,
Secret Manager and Cloud Scheduler, through the person's own `gcloud` (read-only verbs: list, describe,
get-iam-policy). A secret's value is never asked for: only its enabled versions are listed.

gcloud missing, signed out, or answering an error other than NOT_FOUND is CannotRead with its last line (a check
then says "not checked"), never a guess.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from shared.errors import CannotRead
from shared.ports import SchedulerJob

TIMEOUT_SECONDS = 60.0


class GcloudInventory:
    def __init__(self, project: str, gcloud: str = "gcloud", timeout: float = TIMEOUT_SECONDS) -> None:
        self.project = project
        self.gcloud = gcloud
        self.timeout = timeout
        self._answers: dict[tuple[str, ...], Any] = {}  # each command asked once, its answer or its refusal kept

    def _run(self, what: str, *args: str, missing_ok: bool = False) -> str | None:
        binary = shutil.which(self.gcloud)
        if binary is None:
            raise CannotRead(f"{what}: gcloud is not installed here")
        try:
            done = subprocess.run([binary, *args, "--project", self.project, "--quiet"], capture_output=True,
                                  text=True, timeout=self.timeout, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise CannotRead(f"{what}: gcloud did not answer in {self.timeout:g} s") from error
        if done.returncode == 0:
            return done.stdout
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        said = next((line for line in lines if line.startswith("ERROR:")), lines[-1])[:300]
        if missing_ok and ("NOT_FOUND" in done.stderr or "not found" in done.stderr.lower()):
            return None
        raise CannotRead(f"{what}: gcloud (exit {done.returncode}): {said}")

    def _json(self, what: str, *args: str, missing_ok: bool = False) -> Any:
        if args not in self._answers:
            try:
                self._answers[args] = self._parse(what, self._run(what, *args, "--format", "json", missing_ok=missing_ok))
            except CannotRead as error:
                self._answers[args] = error
        answer = self._answers[args]
        if isinstance(answer, CannotRead):
            raise CannotRead(str(answer))
        return answer

    @staticmethod
    def _parse(what: str, out: str | None) -> Any:
        if out is None:
            return None
        try:
            return json.loads(out or "null")
        except ValueError as error:
            raise CannotRead(f"{what}: gcloud answered something that is not JSON") from error

    def enabled_apis(self) -> frozenset[str]:
        found = self._json("the APIs enabled", "services", "list", "--enabled") or []
        return frozenset(str((s.get("config") or {}).get("name") or s.get("name", "").rsplit("/", 1)[-1])
                         for s in found if isinstance(s, dict))

    def project_members(self, role: str) -> frozenset[str]:
        policy = self._json("the project's IAM policy", "projects", "get-iam-policy", self.project) or {}
        return frozenset(member for binding in policy.get("bindings", []) if binding.get("role") == role
                         and not binding.get("condition") for member in binding.get("members", []))

    def service_accounts(self) -> frozenset[str]:
        found = self._json("the service accounts", "iam", "service-accounts", "list") or []
        return frozenset(str(a.get("email", "")) for a in found if isinstance(a, dict))

    def secret_versions(self, secret: str) -> int | None:
        found = self._json(f"secret {secret}", "secrets", "versions", "list", secret, "--filter", "state:enabled",
                           missing_ok=True)
        return None if found is None else len(found)

    def scheduler_job(self, location: str, name: str) -> SchedulerJob | None:
        found = self._json(f"scheduler job {name}", "scheduler", "jobs", "describe", name, "--location", location,
                           missing_ok=True)
        if not isinstance(found, dict):
            return None
        return SchedulerJob(str(found.get("name", name)), str(found.get("schedule", "")),
                            str((found.get("pubsubTarget") or {}).get("topicName", "")), str(found.get("state", "")))
