"""The install plan, as tables: names from the config, identities scoped, the alert path wired end to end."""
from __future__ import annotations

import pytest

from shared import config
from shared.errors import ConfigError
from shared.install_plan import (CHANNEL, PROJECT_NUMBER, alert_policy, config_in_source, lookups, notes, plan,
                                  runtime_accounts)

def test_names_come_from_the_config_so_they_never_drift():
    loaded = config.load()
    shells = [step.shell() for step in plan(loaded)]
    assert any(f"gs://{loaded.state.bucket}" in s for s in shells)
    assert sum("functions deploy" in s for s in shells) == 4
    assert all("--project botbalance-prod" in s or "projects add-iam-policy-binding botbalance-prod" in s for s in shells)


def test_every_role_says_why():
    roles = [s for s in plan(config.load()) if "--role" in s.command]
    assert roles and all(step.reason for step in roles)


def test_the_alert_policy_is_labelled_as_a_rollback_trigger():
    policy = alert_policy(config.load())
    assert policy["userLabels"] == {"tagship_rollback": "true"}
    assert policy["displayName"] == "botbalance-api-health"




def shells(loaded=None, **kwargs):
    return [step.shell() for step in plan(loaded or config.load(), **kwargs)]


def test_the_functions_run_with_the_config_setup_was_given_relative_to_the_source(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "prod.toml").write_text("")
    path = config_in_source(str(tmp_path / "deploy" / "prod.toml"), str(tmp_path))
    assert path == "deploy/prod.toml"
    deploys = [s for s in shells(source_dir=str(tmp_path), config_path=path) if "functions deploy" in s]
    assert len(deploys) == 4 and all("TAGSHIP_CONFIG=deploy/prod.toml" in s for s in deploys)


def test_a_config_outside_the_deployed_source_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(ConfigError, match="inside the deployed source"):
        config_in_source(str(tmp_path / "prod.toml"), str(tmp_path / "src"))


def test_the_alert_policy_names_the_checks_host_never_a_check_id_that_carries_a_generated_suffix():
    condition = alert_policy(config.load())["conditions"][0]["conditionThreshold"]["filter"]
    assert 'resource.label.host="api.botbalance.io"' in condition
    assert "check_id" not in condition


def test_the_alert_policy_notifies_the_rollback_channel_looked_up_after_it_is_created():
    steps = plan(config.load())
    titles = [step.title for step in steps]
    channel = next(i for i, t in enumerate(titles) if t.startswith("notification channel"))
    policy = next(i for i, step in enumerate(steps) if "policies" in step.command)
    assert channel < policy
    assert "--notification-channels" in steps[policy].command and "${CHANNEL}" in steps[policy].shell()
    assert [lookup.name for lookup in steps[policy].needs] == [CHANNEL]


def test_monitorings_notification_agent_may_publish_to_the_rollback_topic_after_the_channel_exists():
    steps = plan(config.load())
    agent = [i for i, step in enumerate(steps)
             if "gcp-sa-monitoring-notification" in step.shell() and "tagship-rollback" in step.command
             and "roles/pubsub.publisher" in step.command]
    channel = next(i for i, step in enumerate(steps) if step.title.startswith("notification channel"))
    assert len(agent) == 1 and agent[0] > channel
    assert '"serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"' in steps[agent[0]].shell()


def test_every_trigger_runs_as_the_functions_own_account_which_may_invoke_it():
    steps = plan(config.load())
    text = [step.shell() for step in steps]
    for name, account in [("tagship-deploy-progress", "tagship-deploy-progress"),
                          ("tagship-health-watchdog", "tagship-health-watchdog"), ("tagship-rollback", "tagship-rollback")]:
        email = f"{account}@botbalance-prod.iam.gserviceaccount.com"
        deploy = next(s for s in text if f"functions deploy {name} " in s)
        assert f"--trigger-service-account {email}" in deploy
        invoker = [i for i, s in enumerate(text) if f"add-invoker-policy-binding {name} " in s and email in s]
        assert len(invoker) == 1 and invoker[0] > text.index(deploy)
    second = next(s for s in text if "eventarc triggers create tagship-progress" in s)
    assert "--service-account tagship-deploy-progress@botbalance-prod.iam.gserviceaccount.com" in second


def test_acting_as_an_account_is_granted_on_the_runtime_accounts_only_never_project_wide():
    text = shells()
    assert not any("roles/iam.serviceAccountUser" in s and "projects add-iam-policy-binding" in s for s in text)
    acting = [s for s in text if "roles/iam.serviceAccountUser" in s]
    assert all("iam service-accounts add-iam-policy-binding" in s for s in acting)
    assert sum('"${PROJECT_NUMBER}-compute@developer.gserviceaccount.com"' in s for s in acting) == 2
    assert sum("tagship-build@botbalance-prod.iam.gserviceaccount.com --member serviceAccount:tagship-deploy-on-tag" in s
               for s in acting) == 1


@pytest.mark.parametrize(
    "accounts, expected",
    [
        ({}, [("the API and the worker and the migrations job", "{PROJECT_NUMBER}-compute@developer.gserviceaccount.com")]),
        ({"api": "app@botbalance-prod.iam.gserviceaccount.com", "worker": "app@botbalance-prod.iam.gserviceaccount.com",
          "migrations": "app@botbalance-prod.iam.gserviceaccount.com"},
         [("the API and the worker and the migrations job", "app@botbalance-prod.iam.gserviceaccount.com")]),
        ({"api": "api@botbalance-prod.iam.gserviceaccount.com"},
         [("the API", "api@botbalance-prod.iam.gserviceaccount.com"),
          ("the worker and the migrations job", "{PROJECT_NUMBER}-compute@developer.gserviceaccount.com")]),
    ],
    ids=["no accounts named: the Compute default account", "one account for all three is granted once",
         "the API's own account beside the default"],
)
def test_runtime_accounts_are_the_ones_the_config_names(accounts, expected):
    loaded = config.load().replace(**{section: {"service_account": email} for section, email in accounts.items()})
    assert runtime_accounts(loaded) == expected


def test_the_build_account_is_created_and_granted_what_the_build_does_and_no_more():
    text = shells()
    build = "serviceAccount:tagship-build@botbalance-prod.iam.gserviceaccount.com"
    grants = [s for s in text if f"--member {build}" in s]
    assert any("iam service-accounts create tagship-build" in s for s in text)
    assert any("artifacts repositories add-iam-policy-binding botbalance --location asia-southeast1" in s
               and "roles/artifactregistry.writer" in s for s in grants)
    assert any("roles/logging.logWriter" in s for s in grants)
    upload = [s for s in grants if "storage buckets add-iam-policy-binding gs://botbalance-prod-tagship-state" in s]
    assert len(upload) == 1 and "objects/frontend/" in upload[0] and "--condition" in upload[0]
    assert not any("secretAccessor" in s for s in grants)
    with_token = shells(config.load().replace(build={"github_token_secret": "botbalance-github-token"}))
    assert any(f"--member {build}" in s and "secrets add-iam-policy-binding botbalance-github-token" in s
               for s in with_token)


def test_the_webhook_function_can_tell_slack_that_a_build_could_not_be_submitted():
    deploy = next(s for s in shells() if "functions deploy tagship-deploy-on-tag " in s)
    assert "SLACK_BOT_TOKEN=tagship-slack-bot-token:latest" in deploy
    assert any("secrets add-iam-policy-binding tagship-slack-bot-token" in s and "tagship-deploy-on-tag@" in s
               for s in shells())


def test_a_looked_up_value_is_a_shell_variable_when_printed_and_the_value_when_applied():
    steps = plan(config.load())
    needing = [step for step in steps if step.needs]
    assert needing and {lookup.name for lookup in lookups(steps)} == {PROJECT_NUMBER, CHANNEL}
    values = {PROJECT_NUMBER: "123456789012", CHANNEL: "projects/botbalance-prod/notificationChannels/42"}
    for step in needing:
        resolved = step.resolved(values)
        assert not resolved.needs and all("{" not in arg or "expression=" in arg for arg in resolved.command)
    assert lookups(steps)[0].shell().startswith('PROJECT_NUMBER="$(gcloud projects describe botbalance-prod')


@pytest.mark.parametrize(
    "frontend, warned",
    [({"bucket": "app.botbalance.io", "url": "https://app.botbalance.io"}, False),
     ({"bucket": "botbalance-frontend", "url": "https://app.botbalance.io"}, True),
     ({"bucket": "app.botbalance.io", "url": "https://App.Botbalance.io:443/"}, False)],
    ids=["a bucket named for the domain is served by the CNAME", "another name is said, with the name to use",
         "the host is compared without case or port"],
)
def test_setup_says_when_the_frontend_bucket_is_not_named_for_its_domain(frontend, warned):
    said = notes(config.load().replace(frontend=frontend))
    assert any("is not named for app.botbalance.io" in note for note in said) is warned


def test_the_frontend_bucket_gets_its_website_main_page_and_error_page():
    [step] = [s for s in plan(config.load()) if "--web-main-page-suffix" in s.command]
    assert "gs://botbalance-frontend" in step.command and step.command[step.command.index("--web-error-page") + 1] == "index.html"


@pytest.mark.parametrize(
    "kind, says",
    [("service", "--no-cpu-throttling"), ("pool", "worker pool")],
    ids=["a worker service is told what Celery needs there", "a worker pool is said to need none of it"],
)
def test_setup_says_what_the_workers_shape_needs(kind, says):
    assert any(says in note for note in notes(config.load().replace(worker={"kind": kind})) if note.startswith("worker"))


def test_the_slack_app_function_is_installed_only_when_someone_may_press_its_buttons():
    without = [step.shell() for step in plan(config.load())]
    with_app = [step.shell() for step in plan(config.load().replace(slack={"actors": ["U0RELEASER"]}))]
    assert not any("tagship-slack-actions" in s or "tagship-slack-signing-secret" in s for s in without)
    deploy = next(s for s in with_app if "functions deploy tagship-slack-actions" in s)
    assert "--entry-point slack_actions" in deploy and "--allow-unauthenticated" in deploy
    assert "SLACK_SIGNING_SECRET=tagship-slack-signing-secret:latest" in deploy
    assert any("secrets create tagship-slack-signing-secret" in s for s in with_app)
    assert any("tagship-slack-actions" in s and "roles/pubsub.publisher" in s for s in with_app)


@pytest.mark.parametrize(
    "github, variable, secret",
    [({"deployments": True}, "GITHUB_TOKEN", "tagship-github-token"),
     ({"deployments": True, "app_id": 4242, "installation_id": 77}, "GITHUB_APP_PRIVATE_KEY", "tagship-github-app-key")],
    ids=["with a token", "as a GitHub App"],
)
def test_deployment_statuses_add_their_secret_to_the_functions_that_move_a_release_and_nothing_when_off(
        github, variable, secret):
    off = [step.shell() for step in plan(config.load())]
    assert not any("tagship-github-token" in s or "tagship-github-app-key" in s for s in off)
    on = [step.shell() for step in plan(config.load().replace(github=github))]
    assert any(f"secrets create {secret}" in s for s in on)
    for name in ("tagship-deploy-progress", "tagship-rollback"):
        deploy = next(s for s in on if f"functions deploy {name}" in s)
        assert f"{variable}={secret}:latest" in deploy
        assert any(f"add-iam-policy-binding {secret}" in s and name in s for s in on)
    webhook = next(s for s in on if "functions deploy tagship-deploy-on-tag" in s)
    assert secret not in webhook
