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


def canary(**keys):
    return lambda r: r.setdefault("canary", {}).update(keys)


@pytest.mark.parametrize(
    "change, message",
    [
        (canary(steps="10,50"), "canary.steps: expected a list of integers, found str '10,50'"),
        (canary(steps=[10, 50.5]), "canary.steps: expected a list of integers, found list [10, 50.5]"),
        (canary(steps=[True]), "canary.steps: expected a list of integers, found list [True]"),
        (canary(steps=[0, 50]), "canary.steps[0]: expected at least 1, found 0"),
        (canary(steps=[10, 100]), "canary.steps[1]: expected at most 99, found 100"),
        (canary(steps=[50, 10]), "canary.steps[1]: expected more than 50 (the list strictly increasing), found 10"),
        (canary(steps=[10, 10]), "canary.steps[1]: expected more than 10 (the list strictly increasing), found 10"),
        (canary(min_seconds_per_step=0), "canary.min_seconds_per_step: expected at least 1, found 0"),
        (canary(min_seconds_per_step=float("nan")), "canary.min_seconds_per_step: expected a finite number"),
        (canary(min_requests_per_step=0), "canary.min_requests_per_step: expected at least 1, found 0"),
        (canary(min_requests_per_step=99.5), "canary.min_requests_per_step: expected an integer, found float 99.5"),
        (canary(min_seconds_per_step=600, max_seconds_per_step=600),
         "canary.max_seconds_per_step: expected more than canary.min_seconds_per_step (600.0), found 600.0"),
        (canary(min_seconds_per_step=600, max_seconds_per_step=500),
         "canary.max_seconds_per_step: expected more than canary.min_seconds_per_step (600.0), found 500.0"),
        (canary(steps=[10, 50], min_seconds_per_step=300, max_seconds_per_step=479),
         ("canary.max_seconds_per_step: expected at least canary.min_seconds_per_step + watchdog.metrics_lag_seconds "
          "(300 + 180 = 480), found 479")),
        (canary(max_seconds_per_step=float("inf")), "canary.max_seconds_per_step: expected a finite number"),
        (canary(inconclusive="wait"), "canary.inconclusive: expected a value matching ^(hold|promote|rollback)$"),
        (canary(inconclusive=""), "canary.inconclusive: expected a value matching"),
        (canary(max_error_ratio=1.5), "canary.max_error_ratio: expected at most 1, found 1.5"),
        (canary(max_error_ratio=-0.1), "canary.max_error_ratio: expected at least 0, found -0.1"),
        (canary(max_error_ratio=float("nan")), "canary.max_error_ratio: expected a finite number"),
        (canary(max_p95_ms=0), "canary.max_p95_ms: expected at least 1, found 0"),
        (canary(max_p95_ms=float("inf")), "canary.max_p95_ms: expected a finite number"),
        (canary(error_ratio_factor=0.5), "canary.error_ratio_factor: expected at least 1, found 0.5"),
        (canary(min_error_difference=-0.01), "canary.min_error_difference: expected at least 0, found -0.01"),
        (canary(min_error_difference=2), "canary.min_error_difference: expected at most 1, found 2"),
        (canary(p95_factor=0.9), "canary.p95_factor: expected at least 1, found 0.9"),
        (canary(p95_factor=float("nan")), "canary.p95_factor: expected a finite number"),
        (canary(min_p95_difference_ms=-1), "canary.min_p95_difference_ms: expected at least 0, found -1"),
        (canary(step=[10]), "canary.step: unknown key"),
        (lambda r: r.update(canary=[10, 50]), "canary: expected a table [canary]"),
    ],
    ids=["steps as a string", "a step that is not a whole percent", "a boolean step", "a step of 0 %",
         "a step of 100 % (the last step passed is the promotion)", "steps going down", "a step repeated",
         "no minimum time", "a minimum time of nan", "a step judged on no requests", "a fraction of a request",
         "a longest equal to the minimum", "a longest below the minimum",
         "a longest that ends before the lagging window could reach the minimum", "an endless longest",
         "an inconclusive choice we do not know", "an empty inconclusive choice", "an error ratio above 1",
         "a negative error ratio", "an error ratio of nan", "a p95 limit of 0 ms", "an infinite p95 limit",
         "a factor that fails a candidate better than stable", "a negative error difference",
         "an error difference above 1", "a p95 factor below 1", "a p95 factor of nan", "a negative p95 difference",
         "a misspelt canary key", "steps given where the table belongs"],
)
def test_canary_keys_are_refused_for_what_they_mean(change, message):
    data = raw()
    change(data)
    with pytest.raises(ConfigError) as error:
        config.parse(data)
    assert message in str(error.value)


def test_the_example_documents_the_canary_and_the_default_leaves_it_off():
    assert config.load(EXAMPLE).canary.steps == (10, 50)  # the example turns the canary on
    data = raw()
    data.pop("canary")
    off = config.parse(data).canary
    assert off.steps == () and off.inconclusive == "hold"


def test_a_canary_that_is_off_is_not_held_to_the_metrics_lag():
    data = raw()
    data["canary"] = {"steps": [], "min_seconds_per_step": 300, "max_seconds_per_step": 301}
    assert config.parse(data).canary.max_seconds_per_step == 301.0


def test_a_longest_exactly_the_minimum_plus_the_lag_is_accepted():
    data = raw()
    data["canary"].update(min_seconds_per_step=300, max_seconds_per_step=480)
    assert config.parse(data).canary.max_seconds_per_step == 480.0


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


@pytest.mark.parametrize("window, says", [
    ("Fri 16:00 - Mon 08:00", "gates.freeze[0]: expected 'DAY HH:MM"),
    ("Fri 16:00 - Mon 08:00 Mars/Olympus: dust", "gates.freeze[0]: unknown time zone"),
], ids=["a window without its time zone", "a zone IANA does not know"])
def test_a_freeze_window_is_checked_when_the_config_is_read_naming_its_place(window, says):
    import tomllib

    raw = tomllib.loads(EXAMPLE.read_text())
    raw["gates"] = {"freeze": [window]}
    with pytest.raises(ConfigError) as refused:
        config.parse(raw)
    assert says in str(refused.value)


def test_a_watchdog_tick_longer_than_its_functions_timeout_allows_is_refused():
    data = raw()
    data.setdefault("watchdog", {})["tick_seconds"] = 300
    with pytest.raises(ConfigError, match="watchdog.tick_seconds: expected at most 100"):
        config.parse(data)


GATES_WRONG = [
    ({"approval": "before_promotion"}, {"steps": []}, "gates.approval: before_promotion waits after the canary"),
    ({"approval": "always"}, None, "gates.approval"),
    ({"approvers": ["#release-managers"]}, None, "gates.approvers: expected each item"),
    ({"approval_max_wait_seconds": 0}, None, "gates.approval_max_wait_seconds"),
    ({"approval_max_wait_seconds": float("inf")}, None, "gates.approval_max_wait_seconds"),
]


@pytest.mark.parametrize("gates, canary_keys, message", GATES_WRONG, ids=[
    "before the promotion of no canary", "a point we do not know", "a channel as an approver", "no wait at all",
    "an endless wait"])
def test_approval_keys_are_refused_for_what_they_mean(gates, canary_keys, message):
    data = raw()
    data.setdefault("gates", {}).update(gates)
    if canary_keys is not None:
        data["canary"] = canary_keys
    with pytest.raises(ConfigError) as error:
        config.parse(data)
    assert message in str(error.value)
