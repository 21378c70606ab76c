import io
from pathlib import Path

import pytest

from shared import config
from shared.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "tagship.toml"


def raw():
    import tomllib

    return tomllib.loads(EXAMPLE.read_text())


def test_the_example_config_loads():
    loaded = config.load(EXAMPLE)
    assert loaded.project.region == "asia-southeast1"
    assert loaded.worker.command[0] == "celery"
    assert loaded.frontend_origin == "https://app.botbalance.io"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["api"].pop("service"), "api.service: required key is missing"),
        (lambda r: r["watchdog"].update(min_requests="fifty"), "watchdog.min_requests: expected an integer, found str 'fifty'"),
        (lambda r: r["watchdog"].update(max_error_ratio=1.5), "watchdog.max_error_ratio: expected at most 1, found 1.5"),
        (lambda r: r["project"].update(region="Asia"), "project.region: expected a value matching"),
        (lambda r: r["github"].update(tag_pattern="v(("), "github.tag_pattern: expected a regular expression"),
        (lambda r: r["worker"].update(command=[]), "worker.command: expected a non-empty list"),
        (lambda r: r["deploy"].update(bake_secs=3), "deploy.bake_secs: unknown key"),
        (lambda r: r.pop("state"), "state: required section [state] is missing"),
        (lambda r: r.update(extra={}), "extra: unknown section"),
        (lambda r: r["rollback"].update(automatic="yes"), "rollback.automatic: expected true or false"),
        (lambda r: r["watchdog"].update(max_error_ratio=float("nan")), "watchdog.max_error_ratio: expected a finite number"),
        (lambda r: r["deploy"].update(bake_seconds=float("inf")), "deploy.bake_seconds: expected a finite number"),
        (lambda r: r["github"].update(tag_pattern=""), "github.tag_pattern: expected a value, found an empty string"),
        (lambda r: r.setdefault("topics", {}).update(rollback=" "), "topics.rollback: expected a value"),
        (lambda r: r["slack"].update(channel=""), "slack.channel: expected a value"),
        (lambda r: r["build"].update(image=""), "build.image: expected a value"),
    ],
    ids=["a missing key is named", "a wrong type says what was found", "a number above its maximum",
         "a pattern mismatch", "a broken regular expression", "an empty command", "a misspelt key",
         "a missing section", "an unknown section", "a string for a boolean", "nan is not a number here",
         "nor is infinity", "an empty tag pattern would match every tag", "a blank topic", "an empty channel",
         "an empty image"],
)
def test_config_errors_name_the_key_and_what_was_found(change, message):
    data = raw()
    change(data)
    with pytest.raises(ConfigError) as error:
        config.parse(data)
    assert message in str(error.value)


def test_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_invalid_toml_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[project\nid=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)


def test_config_path_comes_from_the_environment(monkeypatch, tmp_path):
    copy = tmp_path / "elsewhere.toml"
    copy.write_text(EXAMPLE.read_text().replace("#deploys", "#releases"))
    monkeypatch.setenv("TAGSHIP_CONFIG", str(copy))
    assert config.load().slack.channel == "#releases"


def test_secrets_come_from_the_environment_and_never_print():
    secrets = config.Secrets.from_env({"GITHUB_WEBHOOK_SECRET": "hunter2hunter2", "SLACK_BOT_TOKEN": ""})
    assert secrets.webhook_secret == "hunter2hunter2"
    assert secrets.slack_bot_token is None
    assert "hunter2" not in repr(secrets)


def test_schema_lists_every_key_with_its_doc():
    keys = {row[0] for row in config.schema()}
    assert {"project.id", "watchdog.min_requests", "rollback.trigger_policies"} <= keys
    assert all(row[3] for row in config.schema())


def test_the_readme_configuration_reference_is_the_one_the_schema_generates():
    from cli import config_reference

    readme = (EXAMPLE.parent / "README.md").read_text()
    section = readme.split("<!-- config-reference:start -->\n", 1)[1].split("\n<!-- config-reference:end -->", 1)[0]
    assert section.strip() == config_reference().strip()


@pytest.mark.parametrize("region", ["europe-west10", "us-central1", "asia-southeast1", "me-central2"],
                         ids=["a two-digit region", "us-central1", "asia-southeast1", "me-central2"])
def test_real_regions_are_accepted(region):
    data = raw()
    data["project"]["region"] = region
    assert config.parse(data).project.region == region
