"""The Terraform deployment (terraform/) keeps its contract with the code.

Every .tf file is parsed with python-hcl2; Terraform itself never runs here.
checkov scans the same files in `make lint`.
https://developer.hashicorp.com/terraform/language/expressions/strings#heredoc-strings
"""

import functools
import inspect
import re
import textwrap
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

import main
from handlers.config import MODES, SLACK_TOKEN_ENV, VARIABLES, Settings
from handlers.ledger import firestore as ledger
from handlers.sink_filter import sink_filter

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
# Strings without their quotes; heredocs as written, so that the test applies
# Terraform's own heredoc rules to them (no escapes, common indent removed).
OPTIONS = SerializationOptions(
    strip_string_quotes=True,
    explicit_blocks=False,
    preserve_heredocs=True,
    with_comments=False,
)
SINK_JOBS = '${join(" OR ", [for job in sort(var.jobs) : "\\"${job}\\""])}'


@functools.cache
def parsed() -> dict[str, dict]:
    return {p.name: hcl2.loads(p.read_text(), serialization_options=OPTIONS)
            for p in sorted(TERRAFORM.glob("*.tf"))}  # fmt: skip


@functools.cache
def blocks() -> dict:
    """The blocks of every file: resources by type and name, the rest by name."""
    merged = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}}
    for tree in parsed().values():
        for kind in ("resource", "data"):
            for block in tree.get(kind, []):
                for type_, named in block.items():
                    merged[kind].setdefault(type_, {}).update(named)
        for kind in ("variable", "output"):
            for block in tree.get(kind, []):
                merged[kind].update(block)
        for block in tree.get("locals", []):
            merged["locals"].update(block)
    return merged


def resources(type_: str) -> dict:
    return blocks()["resource"].get(type_, {})


def local(name: str):
    return blocks()["locals"][name]


def default(variable: str):
    return blocks()["variable"][variable]["default"]


def environment() -> dict[str, str]:
    return local("environment")


def render_sink_filter(jobs) -> str:
    """The sink's filter as Terraform renders it for these jobs."""
    assert local("sink_jobs") == SINK_JOBS
    assert local("sink_filter") == "${chomp(local.sink_filter_lines)}"
    heredoc = local("sink_filter_lines")
    opening, _, rest = heredoc.partition("\n")
    body, _, closing = rest.rpartition("\n")
    assert opening == "<<-EOT" and closing.strip() == "EOT"
    text = textwrap.dedent(body)
    assert text.count("${") == 1 and "%{" not in text
    jobs_clause = " OR ".join(f'"{job}"' for job in sorted(jobs))
    return text.replace("${local.sink_jobs}", jobs_clause)


def test_every_terraform_file_parses():
    assert {"variables.tf", "messaging.tf", "sink.tf", "functions.tf"} <= set(parsed())
    assert all(parsed().values())


def test_the_sink_filter_is_the_one_sink_filter_writes():
    for jobs in (default("jobs"), ["b-job", "a-job", "c-job"]):
        expected = sink_filter(jobs)

        written = sink_filter(["JOBS"]).replace('"JOBS"', "${local.sink_jobs}")
        assert render_sink_filter(jobs) == expected, (
            f"terraform/sink.tf's sink_filter_lines must be:\n{written}"
        )


def test_the_sink_watches_the_default_jobs_and_every_kind_of_entry():
    sink = resources("google_logging_project_sink")["training_logs"]
    query = render_sink_filter(default("jobs"))

    assert sink["filter"] == "${local.sink_filter}"
    assert sink["destination"].endswith("${google_pubsub_topic.training_logs.id}")
    assert ",".join(default("jobs")) == VARIABLES[0].default  # WATCHDOG_JOBS
    assert all(f'"{job}"' in query for job in default("jobs"))
    for kind in ("jsonPayload.marker:*", "textPayload=~", '"/Jobs.RunJob"',
                 'log_id("run.googleapis.com/varlog/system")'):  # fmt: skip
        assert kind in query


def test_the_sink_writer_may_only_publish_to_its_topic():
    grants = [
        (kind, grant)
        for kind, named in blocks()["resource"].items()
        for grant in named.values()
        if "writer_identity" in str(grant.get("member", ""))
    ]

    assert grants == [(
        "google_pubsub_topic_iam_member",
        {"topic": "${google_pubsub_topic.training_logs.id}",
         "role": "roles/pubsub.publisher",
         "member": "${google_logging_project_sink.training_logs.writer_identity}"},
    )]  # fmt: skip


def test_the_push_subscriptions_can_seek_and_have_a_dead_letter_topic():
    push = resources("google_pubsub_subscription")["push"]
    low, high = 7, 31

    assert push["for_each"] == "${local.pushed}"
    assert set(local("pushed")) == {"log_entries", "ticks", "audits"}
    assert push["retain_acked_messages"] is True
    assert push["message_retention_duration"] == "${local.retention}"
    assert local("retention") == "${var.message_retention_days * 86400}s"
    assert low <= default("message_retention_days") <= high
    condition = blocks()["variable"]["message_retention_days"]["validation"][0]
    assert f">= {low}" in condition["condition"]
    assert f"<= {high}" in condition["condition"]
    dead_letter = push["dead_letter_policy"][0]
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert push["retry_policy"][0]["minimum_backoff"] == "10s"
    assert push["expiration_policy"][0]["ttl"] == ""


def test_the_push_is_authenticated_for_the_function_it_reaches():
    push = resources("google_pubsub_subscription")["push"]["push_config"][0]
    uri = "${google_cloudfunctions2_function.watchdog[each.value.function]" \
          ".service_config[0].uri}"  # fmt: skip

    assert push["push_endpoint"] == uri + "/${each.value.topic}"
    assert push["oidc_token"][0]["audience"] == uri
    assert push["oidc_token"][0]["service_account_email"] == (
        "${google_service_account.push.email}"
    )
    pushed = local("pushed")
    assert pushed["log_entries"]["function"] == "log_entries"
    assert pushed["audits"]["function"] == "log_entries"
    assert pushed["ticks"]["function"] == "ticks"


def test_the_dead_letters_can_be_pulled_for_a_month():
    inspect_ = resources("google_pubsub_subscription")["dead_letter"]

    assert inspect_["topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert "push_config" not in inspect_
    assert inspect_["message_retention_duration"] == "${31 * 86400}s"


def test_the_functions_set_only_variables_the_configuration_declares():
    declared = {v.name for v in VARIABLES}
    function = resources("google_cloudfunctions2_function")["watchdog"]
    service = function["service_config"][0]
    secret = service["dynamic"][0]["secret_environment_variables"]["content"][0]

    assert service["environment_variables"] == "${local.environment}"
    assert set(environment()) <= declared, set(environment()) - declared
    assert secret["key"] == SLACK_TOKEN_ENV
    assert SLACK_TOKEN_ENV not in environment()


def test_the_defaults_are_the_configuration_s_and_it_accepts_them():
    env = {name: resolve(value) for name, value in environment().items()}
    declared = {v.name: v.default for v in VARIABLES}

    for name, value in env.items():
        if name not in ("WATCHDOG_LEDGER", "WATCHDOG_PROJECT", "WATCHDOG_AUDIT_TOPIC"):
            assert value == declared[name], name
    settings = Settings.from_env(env)
    assert settings.rollback_mode == "dry-run"
    assert settings.ledger == "firestore://core-override-watchdog"


def resolve(expression: str) -> str:
    """An environment value as Terraform would render it with the defaults."""
    references = {
        "google_firestore_database.ledger.name": default("firestore_database"),
        "google_pubsub_topic.audits.id": "projects/my-project/topics/watchdog-audit",
        "var.project_id": "my-project",
    }

    def value(match: re.Match) -> str:
        inner = match.group(1)
        if inner in references:
            return references[inner]
        if found := re.fullmatch(r"var\.(\w+)", inner):
            return str(default(found.group(1)))
        if found := re.fullmatch(r"tostring\(var\.(\w+)\)", inner):
            return str(default(found.group(1)))
        if found := re.fullmatch(r'join\(",", var\.(\w+)\)', inner):
            return ",".join(default(found.group(1)))
        raise AssertionError(f"no rendering for ${{{inner}}}")

    return re.sub(r"\$\{([^}]*)\}", value, expression)


def test_the_rollback_modes_are_the_configuration_s():
    validation = blocks()["variable"]["rollback_mode"]["validation"][0]

    assert tuple(re.findall(r'"([a-z-]+)"', validation["condition"])) == MODES


def test_the_functions_run_the_entry_points_of_main():
    functions = local("functions")
    function = resources("google_cloudfunctions2_function")["watchdog"]

    assert function["for_each"] == "${local.functions}"
    assert {f["entry_point"] for f in functions.values()} == {
        "handle_log_entry", "handle_tick"}  # fmt: skip
    for each in functions.values():
        assert inspect.isfunction(getattr(main, each["entry_point"]))
    assert function["build_config"][0]["runtime"] == "python311"
    service = function["service_config"][0]
    assert service["timeout_seconds"] == "${var.function_timeout_seconds}"
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert (
        service["service_account_email"] == "${google_service_account.watchdog.email}"
    )
    push = resources("google_pubsub_subscription")["push"]
    assert push["ack_deadline_seconds"] == "${var.function_timeout_seconds}"


def test_the_source_is_the_function_without_what_only_develops_it():
    archive = blocks()["data"]["archive_file"]["source"]
    included = {
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*")
        if path.is_file() and not excluded(path.relative_to(ROOT), archive["excludes"])
    }

    assert archive["source_dir"] == "${path.module}/.."
    assert {"main.py", "requirements.txt", "handlers/config.py"} <= included
    tops = {"tests", "terraform", "r", "bench", "samples", "docs", ".venv", ".git"}
    assert not {p for p in included if p.split("/")[0] in tops}
    assert not [p for p in included if "__pycache__" in p]


def excluded(relative: Path, excludes: list[str]) -> bool:
    """terraform-provider-archive's rule: a directory that matches is skipped
    whole; a pattern matches the path relative to source_dir, with * as .*"""
    parts = relative.parts
    return any(
        matches("/".join(parts[: n + 1]), pattern)
        for n in range(len(parts))
        for pattern in excludes
    )


def matches(path: str, pattern: str) -> bool:
    if path == pattern:
        return True
    regex = "^" + re.escape(pattern).replace(r"\*", ".*")
    return "*" in pattern and re.match(regex, path) is not None


def test_each_expiring_collection_group_has_a_ttl_policy():
    field = resources("google_firestore_field")["ttl"]
    database = resources("google_firestore_database")["ledger"]

    assert local("ttl_collections") == list(ledger.EXPIRING)
    assert local("ttl_field") == ledger.TTL_FIELD
    assert field["for_each"] == "${toset(local.ttl_collections)}"
    assert field["field"] == "${local.ttl_field}"
    assert "ttl_config" in field
    assert database["type"] == "FIRESTORE_NATIVE"
    assert ledger.INDEXES == () and not resources("google_firestore_index")


def test_the_watchdog_may_change_the_watched_jobs_only():
    role = resources("google_project_iam_custom_role")["job_rollback"]
    grant = resources("google_cloud_run_v2_job_iam_member")["watchdog"]
    act_as = resources("google_service_account_iam_member")["act_as_training"]

    assert set(role["permissions"]) == {
        "run.jobs.get", "run.jobs.update", "run.executions.get",
        "run.executions.list"}  # fmt: skip
    assert grant["for_each"] == "${toset(var.jobs)}"
    assert grant["name"] == "${each.value}"
    assert grant["role"] == "${google_project_iam_custom_role.job_rollback.name}"
    assert act_as["role"] == "roles/iam.serviceAccountUser"
    assert act_as["service_account_id"].endswith("${var.training_service_account}")


def test_project_wide_grants_are_narrow():
    grants = resources("google_project_iam_member")
    operations = resources("google_project_iam_custom_role")["run_operations"]

    assert set(grants) == {"run_operations", "ledger"}
    assert operations["permissions"] == ["run.operations.get"]
    ledger_grant = grants["ledger"]
    assert ledger_grant["role"] == "roles/datastore.user"
    assert (
        "google_firestore_database.ledger.name"
        in (ledger_grant["condition"][0]["expression"])
    )


def test_the_push_identity_may_only_invoke_the_functions():
    grants = [
        (kind, grant["role"])
        for kind, named in blocks()["resource"].items()
        for grant in named.values()
        if grant.get("member") == "${local.push_member}"
    ]

    assert grants == [("google_cloud_run_v2_service_iam_member", "roles/run.invoker")]


def test_the_slack_token_is_a_secret_read_by_the_watchdog_alone():
    grant = resources("google_secret_manager_secret_iam_member")["slack_token"]

    assert grant["secret_id"] == "${var.slack_token_secret}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "${local.watchdog_member}"


def test_the_ticks_come_every_ten_minutes_to_the_ticks_topic():
    tick = resources("google_cloud_scheduler_job")["tick"]

    assert default("tick_schedule") == "*/10 * * * *"
    assert tick["pubsub_target"][0]["topic_name"] == "${google_pubsub_topic.ticks.id}"


def test_variables_and_outputs_are_described():
    for kind in ("variable", "output"):
        for name, block in blocks()[kind].items():
            assert block.get("description"), f"{kind} {name}"
    for name in ("region", "jobs", "rollback_mode", "rollback_threshold",
                 "message_retention_days", "function_timeout_seconds"):  # fmt: skip
        assert blocks()["variable"][name].get("validation"), name


def test_the_example_sets_declared_variables_and_every_required_one():
    example = hcl2.loads((TERRAFORM / "terraform.tfvars.example").read_text(),
                         serialization_options=OPTIONS)  # fmt: skip
    variables = blocks()["variable"]
    required = {name for name, block in variables.items() if "default" not in block}

    assert set(example) <= set(variables)
    assert required <= set(example)
