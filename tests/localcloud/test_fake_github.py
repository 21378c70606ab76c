"""The fake GitHub's Deployments endpoints, driven by the real PyGithub client over HTTP on loopback: what GitHub
refuses is refused with GitHub's answer, and tagship's adapter (auto_merge false, required_contexts []) is taken."""
from __future__ import annotations

from typing import Iterator

import pytest
from github import Auth, Github, GithubException

from localcloud.fake_github import FakeGitHub
from localcloud.scenario import Scenario
from shared import clients
from shared.adapters.github import GithubDeployments
from shared.errors import PermanentError, TransientError

REPO = "botbalance/botbalance"
TOKEN = "ghp_localtesttoken"
SHA = "a" * 40


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    github = FakeGitHub(Scenario(), repository=REPO, tokens=[TOKEN]).start()
    github.add_ref("v1.0.0", SHA)
    try:
        yield github
    finally:
        github.stop()
        clients.reset()


def client(fake: FakeGitHub, token: str = TOKEN) -> Github:
    return Github(auth=Auth.Token(token), base_url=fake.base_url, retry=None, timeout=5,
                  seconds_between_requests=None, seconds_between_writes=None, lazy=True)


def create(fake: FakeGitHub, **changes):
    arguments = {"ref": "v1.0.0", "auto_merge": False, "required_contexts": [], "environment": "production",
                 "payload": {"tagship": "v1.0.0"}, **changes}
    return client(fake).get_repo(REPO).create_deployment(**arguments)


@pytest.mark.parametrize(
    "changes, status, message",
    [
        ({"auto_merge": True}, 409, "Conflict merging main into v1.0.0."),
        ({"required_contexts": ["ci/test"]}, 409, "Conflict: Commit status checks failed for v1.0.0."),
        ({"ref": "v9.9.9"}, 422, "No ref found for: v9.9.9"),
    ],
    ids=["auto_merge of a tag behind the default branch", "a required context that is pending",
         "a ref the repository does not have"],
)
def test_a_deployment_github_would_refuse_is_refused_and_nothing_is_made(fake, changes, status, message):
    with pytest.raises(GithubException) as error:
        create(fake, **changes)
    assert (error.value.status, error.value.data["message"]) == (status, message)
    assert fake.deployments == []


def test_required_contexts_left_out_means_every_commit_status_must_pass():
    github = FakeGitHub(Scenario(), repository=REPO, tokens=[TOKEN]).start()
    try:
        github.add_ref("v1.0.0", SHA)
        github.behind = set()
        repo = client(github).get_repo(REPO)
        with pytest.raises(GithubException) as error:
            repo.create_deployment("v1.0.0", environment="production")
        assert error.value.status == 409 and "status checks failed" in error.value.data["message"]
        github.add_ref("v1.1.0", "b" * 40, statuses={"ci/test": "success"})
        assert repo.create_deployment("v1.1.0", environment="production").sha == "b" * 40
    finally:
        github.stop()


@pytest.mark.parametrize(
    "token, repository, status",
    [("ghp_wrong", REPO, 401), (TOKEN, "botbalance/other", 404)],
    ids=["a token GitHub does not know", "a repository the token cannot see"],
)
def test_a_bad_token_is_401_and_an_unknown_repository_404(fake, token, repository, status):
    with pytest.raises(GithubException) as error:
        client(fake, token).get_repo(repository).create_deployment("v1.0.0", auto_merge=False,
                                                                               required_contexts=[])
    assert error.value.status == status


def test_a_status_of_an_unknown_state_or_over_140_characters_is_422(fake):
    deployment = create(fake)
    for state, description in (("exploded", "x"), ("success", "x" * 141)):
        with pytest.raises(GithubException) as error:
            deployment.create_status(state, description=description)
        assert error.value.status == 422
    assert fake.states("v1.0.0") == [[]]


def test_a_success_makes_the_environments_earlier_success_inactive_and_target_url_is_the_log_url(fake):
    fake.add_ref("v1.1.0", "b" * 40)
    first = create(fake)
    first.create_status("success", target_url="https://log/1", environment_url="https://app")
    second = create(fake, ref="v1.1.0", payload={"tagship": "v1.1.0"})
    second.create_status("success", target_url="https://log/2")
    assert fake.states("v1.0.0") == [["success", "inactive"]]
    assert fake.states("v1.1.0") == [["success"]]
    assert fake.deployments[1]["statuses"][0]["log_url"] == "https://log/2"


def test_the_adapter_makes_a_deployment_github_takes_finds_it_by_its_marker_and_follows_it(fake):
    adapter = GithubDeployments(clients.github(fake.base_url, 2.0, token=TOKEN), REPO)
    assert adapter.find("v1.0.0", "production", {"tagship": "v1.0.0"}) is None
    number = adapter.create("v1.0.0", "production", {"tagship": "v1.0.0"}, "v1.0.0 recorded", production=True)
    assert adapter.find("v1.0.0", "production", {"tagship": "v1.0.0"}) == number
    assert adapter.find("v1.0.0", "production", {"tagship": "v1.0.0.attempt-2"}) is None
    for state in ("queued", "in_progress", "success"):
        adapter.set_status(number, state, f"v1.0.0 {state}", environment_url="https://app", log_url="https://log")
    assert fake.states("v1.0.0") == [["queued", "in_progress", "success"]]


def test_the_adapter_says_what_to_fix_when_refused_and_github_down_is_transient(fake):
    refused = GithubDeployments(clients.github(fake.base_url, 2.0, token="ghp_wrong"), REPO)
    with pytest.raises(PermanentError, match="401.*check GITHUB_TOKEN") as error:
        refused.create("v1.0.0", "production", {"tagship": "v1.0.0"}, "x", production=True)
    assert "ghp_wrong" not in str(error.value)
    fake.down = True
    down = GithubDeployments(clients.github(fake.base_url, 2.0, token=TOKEN), REPO)
    with pytest.raises(TransientError, match="GitHub did not answer"):
        down.find("v1.0.0", "production", {"tagship": "v1.0.0"})


def test_a_github_app_gets_an_installation_token_for_its_signed_jwt_and_deploys_with_it():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    github = FakeGitHub(Scenario(), repository=REPO, app_id=4242, app_public_key=public, installation_id=77).start()
    try:
        github.add_ref("v1.0.0", SHA)
        app = GithubDeployments(clients.github(github.base_url, 2.0, app_id=4242, installation_id=77,
                                               private_key=private), REPO)
        number = app.create("v1.0.0", "production", {"tagship": "v1.0.0"}, "x", production=True)
        assert [c["what"] for c in github.calls][:2] == ["access_tokens", "deployments.create"]
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        forged = GithubDeployments(clients.github(github.base_url, 2.0, app_id=4242, installation_id=77,
                                                  private_key=other), REPO)
        with pytest.raises(PermanentError, match="401"):
            forged.set_status(number, "success", "x", environment_url="", log_url="")
    finally:
        github.stop()
        clients.reset()
