"""GitHub deployments through PyGithub (https://docs.github.com/en/rest/deployments).

A release's deployment is made of its tag with `auto_merge` false (GitHub would otherwise try to merge the default
branch into the ref and answer 409 for a tag behind it) and `required_contexts` [] (otherwise every commit status
must be success, else 409), not transient. Its statuses are posted with `auto_inactive` true, so GitHub itself marks
the environment's earlier successful deployment inactive when a new one succeeds. The build log goes in
`target_url`, which GitHub copies to `log_url` (PyGithub sends no `log_url` of its own).

Errors are mapped once here: GitHub down, a timeout, 5xx and rate limits are TransientError; 401, 403, 404, 409
and 422 are PermanentError whose message says what to fix. No message holds a credential.
"""
from __future__ import annotations

from typing import Any

from shared.errors import PermanentError, TransientError
from shared.text import log_value

_FIXES = {
    401: "GitHub refused the credentials: check GITHUB_TOKEN, or github.app_id, github.installation_id and "
         "GITHUB_APP_PRIVATE_KEY",
    403: "GitHub forbade it: the token or the App needs Deployments read & write on the repository (and "
         "Metadata read)",
    404: "GitHub knows no such repository for these credentials: check github.repository, and that the App is "
         "installed on it (or the token can see it)",
    409: "GitHub refused the deployment as conflicting (auto_merge or required commit statuses)",
    422: "GitHub refused the request as invalid (an unknown ref or state)",
}


class GithubDeployments:
    """The `Deployments` port for one repository, over a PyGithub client (`shared.clients.github`)."""

    def __init__(self, client: Any, repository: str) -> None:
        self._client = client
        self._repository = repository

    def _repo(self) -> Any:
        return self._client.get_repo(self._repository)

    def find(self, ref: str, environment: str, marker: dict[str, str]) -> int | None:
        def look() -> int | None:
            for deployment in self._repo().get_deployments(ref=ref, environment=environment):
                payload = deployment.payload if isinstance(deployment.payload, dict) else {}
                if all(payload.get(key) == value for key, value in marker.items()):
                    return int(deployment.id)
            return None

        return self._call("find the deployment", look)

    def create(self, ref: str, environment: str, marker: dict[str, str], description: str, *,
               production: bool) -> int:
        return self._call("create the deployment", lambda: int(self._repo().create_deployment(
            ref, task="deploy", auto_merge=False, required_contexts=[], payload=dict(marker),
            environment=environment, description=description, transient_environment=False,
            production_environment=production).id))

    def set_status(self, deployment_id: int, state: str, description: str, *, environment_url: str,
                   log_url: str) -> None:
        def post() -> None:
            deployment = self._repo().get_deployment(deployment_id)
            deployment.create_status(state, target_url=log_url, description=description,
                                     environment_url=environment_url, auto_inactive=True)

        self._call(f"set the deployment's status to {state}", post)

    def _call(self, what: str, call: Any) -> Any:
        from github import GithubException, RateLimitExceededException
        from requests import RequestException

        try:
            return call()
        except RateLimitExceededException:
            raise TransientError(f"GitHub's rate limit holds {what} on {self._repository}") from None
        except GithubException as error:
            status = int(error.status or 0)
            message = (error.data or {}).get("message", "") if isinstance(error.data, dict) else ""
            detail = f"GitHub answered {status} to {what} on {self._repository}: {log_value(str(message), 200)}"
            if status in _FIXES:
                raise PermanentError(f"{detail}; {_FIXES[status]}") from None
            raise TransientError(detail) from None
        except (RequestException, OSError) as error:
            raise TransientError(f"GitHub did not answer to {what} on {self._repository}: "
                                 f"{type(error).__name__}") from None
