"""A fake of GitHub's REST Deployments endpoints on 127.0.0.1, for the real PyGithub client (`base_url`).

    GET/POST /repos/{owner}/{repo}/deployments          list (filters sha, ref, task, environment) / create
    GET      /repos/{owner}/{repo}/deployments/{id}
    GET/POST /repos/{owner}/{repo}/deployments/{id}/statuses
    POST     /app/installations/{id}/access_tokens      a GitHub App's installation token, for a JWT it signed

It answers as GitHub does (https://docs.github.com/en/rest/deployments/deployments,
https://docs.github.com/en/rest/deployments/statuses), and refuses what GitHub refuses, with its JSON
`{"message": ..., "documentation_url": ...}`:
- 401 `Bad credentials` for a token it does not know (`tokens`, and installation tokens it handed out) or none;
  an installation token only for a JWT signed RS256 with the App's key (`app_public_key`) whose `iss` is `app_id`;
- 404 `Not Found` for a repository other than `repository` (GitHub hides what a token cannot see the same way);
- 422 for a create without `ref`, or with a ref that is no tag or branch it knows (`refs`), a `payload` that is
  not an object or JSON text, a status with no state or an unknown one, a description over 140 characters;
- 409 for a create with `auto_merge` (default true) of a ref behind the default branch (`behind`: every tag by
  default): GitHub would merge the default branch into it, which it cannot for a tag;
- 409 for a create whose required contexts (default: every context the commit has) are not all `success`
  (`commit_statuses`: sha -> {context: state}; every commit has a pending `ci/test` by default);
- `auto_inactive` (default true): a success marks the environment's earlier successful, non-transient deployments
  inactive; production ones only when the `flash-preview` media type is sent (PyGithub sends it);
- `target_url` and `log_url` are one value (setting either sets both).

Faults: `down = True` closes every connection without an answer; `scenario.inject_fault("github/<what>", code,
times)` answers `code` (an HTTP status as text, or "down") for `what` in deployments.create, deployments.list,
statuses.create, access_tokens. Everything is recorded: `deployments` (each with its `statuses`) and `calls`.
"""
from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
from typing import Any, Callable, Iterable

from werkzeug.wrappers import Request, Response

from localcloud.http_server import LoopbackServer
from localcloud.scenario import Scenario

HOST = "127.0.0.1"
STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
DESCRIPTION_MAX = 140
DOCS = "https://docs.github.com/rest/deployments"
FLASH_PREVIEW = "application/vnd.github.flash-preview+json"


class _DropConnection(ConnectionAbortedError):
    pass


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeGitHub:
    def __init__(self, scenario: Scenario, *, repository: str, tokens: Iterable[str] = (), app_id: int = 0,
                 app_public_key: str = "", installation_id: int = 0) -> None:
        self.scenario = scenario
        self.repository = repository
        self._tokens = set(tokens)
        self._app_id, self._app_key, self._installation_id = app_id, app_public_key, installation_id
        self.refs: dict[str, str] = {}  # tag or branch -> sha
        self.behind: set[str] | None = None  # refs behind the default branch; None: every tag
        self.commit_statuses: dict[str, dict[str, str]] = {}  # sha -> context -> state
        self.down = False
        self._lock = threading.Lock()
        self._deployments: list[dict[str, Any]] = []
        self._calls: list[dict[str, Any]] = []
        self._http = LoopbackServer(self._wsgi, "localcloud-github")

    def start(self) -> "FakeGitHub":
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def base_url(self) -> str:
        return self._http.base_url

    # -- the repository --------------------------------------------------------------------------------------------
    def add_ref(self, ref: str, sha: str, *, statuses: dict[str, str] | None = None) -> None:
        """A tag (or branch) of `sha`, whose commit has these statuses (default: a pending `ci/test`)."""
        with self._lock:
            self.refs[ref] = sha
            self.commit_statuses.setdefault(sha, dict(statuses if statuses is not None else {"ci/test": "pending"}))

    @property
    def deployments(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._deployments)

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._calls)

    def states(self, ref: str) -> list[list[str]]:
        """Each deployment of `ref`, oldest first, as its statuses' states in the order posted."""
        return [[s["state"] for s in d["statuses"]] for d in self.deployments if d["ref"] == ref]

    # -- HTTP ------------------------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        what, response = self._route(request, environ)
        with self._lock:
            self._calls.append({"method": request.method, "path": request.path, "what": what,
                                "status": response.status_code})
        return response(environ, start_response)

    def _route(self, request: Request, environ: dict[str, Any]) -> tuple[str, Response]:
        if self.down:
            self._drop(environ)
        path, method = request.path.rstrip("/"), request.method
        installation = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if installation and method == "POST":
            return "access_tokens", self._faulted("access_tokens", environ) or self._token(request, int(installation[1]))
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/deployments(?:/(\d+))?(/statuses)?", path)
        if match is None:
            return path, _error(404, "Not Found")
        if not self._authorised(request):
            return "auth", _error(401, "Bad credentials")
        if f"{match[1]}/{match[2]}".lower() != self.repository.lower():
            return "repository", _error(404, "Not Found")
        number, statuses = match[3], match[4]
        if number is None:
            if method == "POST":
                return "deployments.create", self._faulted("deployments.create", environ) or self._create(request)
            return "deployments.list", self._faulted("deployments.list", environ) or self._list(request)
        deployment = self._find(int(number))
        if deployment is None:
            return "deployment", _error(404, "Not Found")
        if statuses is None:
            return "deployment", _json(200, self._view(deployment))
        if method == "POST":
            return "statuses.create", self._faulted("statuses.create", environ) or self._status(request, deployment)
        with self._lock:
            return "statuses.list", _json(200, [dict(s) for s in reversed(deployment["statuses"])])

    def _drop(self, environ: dict[str, Any]) -> None:
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise _DropConnection("fake GitHub is down")

    def _faulted(self, what: str, environ: dict[str, Any]) -> Response | None:
        code = self.scenario.take_fault(f"github/{what}")
        if code is None:
            return None
        if code == "down":
            self._drop(environ)
        return _error(int(code) if code.isdigit() else 500, "Server Error")

    def _authorised(self, request: Request) -> bool:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() in ("token", "bearer") and credential.strip() in self._tokens

    def _token(self, request: Request, installation: int) -> Response:
        import jwt

        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._app_key:
            return _error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(credential.strip(), self._app_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError:
            return _error(401, "A JSON web token could not be decoded")
        if str(claims.get("iss")) != str(self._app_id):
            return _error(401, "'Issuer' claim ('iss') must be an Integer")
        if installation != self._installation_id:
            return _error(404, "Not Found")
        token = f"ghs_local{len(self._tokens):04d}installationtoken"
        with self._lock:
            self._tokens.add(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return _json(201, {"token": token, "expires_at": expires, "permissions": {"deployments": "write",
                                                                                  "metadata": "read"}})

    # -- deployments -----------------------------------------------------------------------------------------------
    def _create(self, request: Request) -> Response:
        body = _body(request)
        if body is None:
            return _error(400, "Problems parsing JSON")
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            return _error(422, "Invalid request.\n\n\"ref\" wasn't supplied.")
        sha = self.refs.get(ref)
        if sha is None:
            return _error(422, f"No ref found for: {ref}")
        payload = body.get("payload", {})
        if isinstance(payload, str):
            try:
                payload = json.loads(payload) if payload else {}
            except ValueError:
                return _error(422, "Invalid request.\n\nFor 'properties/payload', is not a JSON object.")
        if not isinstance(payload, dict):
            return _error(422, "Invalid request.\n\nFor 'properties/payload', is not an object.")
        behind = ref in (self.behind if self.behind is not None else set(self.refs))
        if body.get("auto_merge", True) and behind:
            return _error(409, f"Conflict merging main into {ref}.")
        contexts = self.commit_statuses.get(sha, {})
        required = body.get("required_contexts")
        wanted = list(contexts) if required is None else required
        failing = [c for c in wanted if contexts.get(c) != "success"]
        if failing:
            return _error(409, f"Conflict: Commit status checks failed for {ref}.",
                          errors=[{"contexts": [{"context": c, "state": contexts.get(c, "missing")} for c in failing],
                                   "resource": "Deployment", "field": "required_contexts", "code": "invalid"}])
        environment = body.get("environment") or "production"
        with self._lock:
            number = len(self._deployments) + 1
            deployment = {
                "id": number, "node_id": f"DE_{number}", "sha": sha, "ref": ref, "task": body.get("task") or "deploy",
                "payload": payload, "original_environment": environment, "environment": environment,
                "description": body.get("description") or "", "creator": {"login": "tagship[bot]", "id": 1},
                "created_at": _now(), "updated_at": _now(),
                "transient_environment": bool(body.get("transient_environment", False)),
                "production_environment": bool(body.get("production_environment", environment == "production")),
                "statuses": [],
            }
            self._deployments.append(deployment)
        return _json(201, self._view(deployment))

    def _list(self, request: Request) -> Response:
        keys = ("sha", "ref", "task", "environment")
        wanted = {k: request.args[k] for k in keys if request.args.get(k)}
        with self._lock:
            found = [d for d in reversed(self._deployments) if all(d[k] == v for k, v in wanted.items())]
            return _json(200, [self._view(d) for d in found])

    def _find(self, number: int) -> dict[str, Any] | None:
        with self._lock:
            return next((d for d in self._deployments if d["id"] == number), None)

    def _view(self, deployment: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{self.repository}/deployments/{deployment['id']}"
        view = {k: v for k, v in deployment.items() if k != "statuses"}
        return {**view, "url": url, "statuses_url": f"{url}/statuses",
                "repository_url": f"{self.base_url}/repos/{self.repository}"}

    def _status(self, request: Request, deployment: dict[str, Any]) -> Response:
        body = _body(request)
        if body is None:
            return _error(400, "Problems parsing JSON")
        state = body.get("state")
        if state not in STATES:
            return _error(422, "Invalid request.\n\nFor 'properties/state', "
                               f"{json.dumps(state)} is not one of {', '.join(STATES)}.")
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
            return _error(422, "Validation Failed", errors=[{"resource": "DeploymentStatus", "field": "description",
                                                             "code": "custom", "message": "description is too long "
                                                             "(maximum is 140 characters)"}])
        log_url = body.get("log_url") or body.get("target_url") or ""
        flash = FLASH_PREVIEW in request.headers.get("Accept", "")
        with self._lock:
            status = {
                "id": sum(len(d["statuses"]) for d in self._deployments) + 1, "state": state,
                "description": description, "environment": body.get("environment") or deployment["environment"],
                "target_url": log_url, "log_url": log_url, "environment_url": body.get("environment_url") or "",
                "created_at": _now(), "updated_at": _now(), "creator": {"login": "tagship[bot]", "id": 1},
                "deployment_url": f"{self.base_url}/repos/{self.repository}/deployments/{deployment['id']}",
                "repository_url": f"{self.base_url}/repos/{self.repository}",
            }
            deployment["statuses"].append(status)
            if state == "success" and body.get("auto_inactive", True):
                self._inactivate_before(deployment, flash)
        return _json(201, dict(status))

    def _inactivate_before(self, current: dict[str, Any], flash: bool) -> None:
        """GitHub's auto_inactive, under the lock."""
        for other in self._deployments:
            if other is current or other["environment"] != current["environment"] or other["transient_environment"]:
                continue
            if other["production_environment"] and not flash:
                continue
            if other["statuses"] and other["statuses"][-1]["state"] == "success":
                other["statuses"].append({**other["statuses"][-1], "state": "inactive",
                                          "description": "auto-inactivated", "created_at": _now(),
                                          "id": sum(len(d["statuses"]) for d in self._deployments) + 1})


def _body(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status, content_type="application/json; charset=utf-8")


def _error(status: int, message: str, **extra: Any) -> Response:
    return _json(status, {"message": message, "documentation_url": DOCS, **extra})
