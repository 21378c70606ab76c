"""Which GitHub deployment status a release shows, what it says, and which statuses a deployment gets next, as
tables; and the config keys of [github] that turn it on, each refused with what was expected."""
import pytest

from shared import config
from shared.core.deployment_status import (
    DESCRIPTION_MAX,
    GITHUB_STATES,
    description,
    github_state,
    marker,
    statuses_to_post,
)
from shared.errors import ConfigError
from tests.unit.test_config import raw


@pytest.mark.parametrize(
    "release_state, waiting, expected",
    [
        ("building", True, "queued"), ("building", False, "in_progress"), ("migrating", False, "in_progress"),
        ("deploying", False, "in_progress"), ("publishing", False, "in_progress"), ("verifying", False, "in_progress"),
        ("live", False, "success"), ("failed", False, "failure"), ("rolled_back", False, "inactive"),
        ("superseded", False, "inactive"), ("deploying", True, "in_progress"),
    ],
    ids=[
        "a release waiting behind the one in flight is queued", "a release building is in progress",
        "migrating is in progress", "deploying is in progress", "publishing is in progress",
        "verifying is in progress", "a live release is a success", "a failed release is a failure",
        "a rolled-back release is inactive", "a superseded release is inactive",
        "waiting means queued only before anything moved",
    ],
)
def test_each_release_state_shows_one_github_state(release_state, waiting, expected):
    assert github_state(release_state, waiting) == expected
    assert expected in GITHUB_STATES


def test_a_state_tagship_does_not_have_is_refused():
    with pytest.raises(ValueError, match="expected a release state"):
        github_state("exploded")


@pytest.mark.parametrize(
    "posted, target, expected",
    [
        ("", "in_progress", ("queued", "in_progress")), ("", "queued", ("queued",)),
        ("", "success", ("queued", "success")), ("queued", "in_progress", ("in_progress",)),
        ("in_progress", "in_progress", ()), ("in_progress", "success", ("success",)),
        ("success", "inactive", ("inactive",)), ("in_progress", "failure", ("failure",)),
        ("failure", "inactive", ()), ("inactive", "in_progress", ()), ("in_progress", "queued", ("queued",)),
        ("inactive", "success", ("success",)), ("success", "success", ()),
    ],
    ids=[
        "a new deployment is queued first, then shows where the release is",
        "a new deployment of a waiting release is queued once",
        "a deployment made late still shows it was recorded first",
        "queued moves to in progress", "the same status is never posted twice in a row",
        "in progress moves to success", "a success rolled back goes inactive", "in progress moves to failure",
        "a failed deployment moves no more", "an inactive deployment goes back to no step",
        "a release that starts waiting shows queued again",
        "a release rolled back to serves again: success once more", "a live release refreshed posts nothing",
    ],
)
def test_which_statuses_a_deployment_gets_next(posted, target, expected):
    assert statuses_to_post(posted, target) == expected


@pytest.mark.parametrize(
    "tag, github, release_state, error, expected",
    [
        ("v1.4.0", "queued", "building", "", "v1.4.0 recorded"),
        ("v1.4.0", "in_progress", "migrating", "", "v1.4.0 running migrations"),
        ("v1.4.0", "success", "live", "", "v1.4.0 live"),
        ("v1.4.0", "failure", "failed", "smoke test failed", "v1.4.0 failed: smoke test failed"),
        ("v1.4.0", "inactive", "rolled_back", "rolled back: health", "v1.4.0 rolled back: rolled back: health"),
        ("v1.4.0\n", "success", "live", "", "v1.4.0 live"),
    ],
    ids=["queued says it was recorded", "in progress says the step", "live", "a failure says why",
         "a rollback says why", "a control character in the tag is no line break"],
)
def test_the_description_says_tag_and_step(tag, github, release_state, error, expected):
    assert description(tag, github, release_state, error) == expected


@pytest.mark.parametrize(
    "tag, error",
    [("v1.0.0", "x" * 5000), ("t" * 200, ""), ("t" * 200, "y" * 300), ("v1\x00\x1b[31m", "<!channel>\r\n" * 50)],
    ids=["a long error is cut", "a long tag is cut", "both long", "control characters and a broadcast"],
)
def test_the_description_never_passes_githubs_140_characters_nor_holds_a_control_character(tag, error):
    text = description(tag, "failure", "failed", error)
    assert len(text) <= DESCRIPTION_MAX
    assert all(ord(ch) >= 32 and ord(ch) != 127 for ch in text)


def test_a_release_queued_behind_another_says_it_waits():
    assert description("v1.4.0", "queued", "building", waiting=True) == "v1.4.0 waiting for the release in flight"


def test_the_marker_names_the_release_attempt():
    assert marker("v1.0.0.attempt-2") == {"tagship": "v1.0.0.attempt-2"}


def test_deployments_are_off_by_default_so_an_install_is_unchanged():
    github = config.parse(raw()).github
    assert (github.deployments, github.environment, github.app_id, github.installation_id) == (False, "production", 0, 0)
    assert github.api_url == "https://api.github.com"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"deployments": "yes"}, "github.deployments: expected true or false, found str 'yes'"),
        ({"environment": ""}, "github.environment: expected a value matching"),
        ({"environment": "prod\nuction"}, "github.environment: expected a value matching"),
        ({"app_id": -1}, "github.app_id: expected at least 0, found -1"),
        ({"app_id": "123"}, "github.app_id: expected an integer, found str '123'"),
        ({"app_id": 123}, "github.installation_id: expected github.app_id and github.installation_id both set"),
        ({"installation_id": 9}, "github.installation_id: expected github.app_id and github.installation_id both set"),
        ({"api_url": "api.github.com"}, "github.api_url: expected a value matching"),
        ({"api_url": "https://api.github.com/x y"}, "github.api_url: expected a value matching"),
        ({"timeout_seconds": 0}, "github.timeout_seconds: expected at least 0.1, found 0.0"),
        ({"timeout_seconds": 600}, "github.timeout_seconds: expected at most 60, found 600.0"),
        ({"production_environment": 1}, "github.production_environment: expected true or false, found int 1"),
        ({"deployment": True}, "github.deployment: unknown key"),
    ],
    ids=["deployments not a boolean", "an empty environment", "a line break in the environment",
         "a negative app id", "an app id as text", "an app without its installation",
         "an installation without its app", "an API URL without a scheme", "an API URL with a space",
         "no timeout", "a timeout past a minute", "production not a boolean", "a misspelt key"],
)
def test_each_github_key_is_refused_with_what_was_expected(values, message):
    data = raw()
    data["github"].update(values)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config.parse(data)


def test_an_app_with_its_installation_loads():
    data = raw()
    data["github"].update({"deployments": True, "app_id": 12345, "installation_id": 678})
    github = config.parse(data).github
    assert (github.app_id, github.installation_id) == (12345, 678)
