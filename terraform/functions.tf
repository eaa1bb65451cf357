# The two functions (2nd gen, Python 3.11), one per entry point of main.py,
# built from the same source: the repository root without what only develops
# or tests it. They have no event trigger: our push subscriptions
# (messaging.tf) deliver to their URIs.
# https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions

locals {
  functions = {
    log_entries = {
      name        = "watchdog-log-entries"
      entry_point = "handle_log_entry"
      # bench/latency_memory.py's goal for the worker is under 150 MiB.
      memory = "256M"
    }
    ticks = {
      name        = "watchdog-ticks"
      entry_point = "handle_tick"
      # The digest renders its chart with matplotlib on this path, which the
      # benchmarks do not measure: twice the log handler's, to be safe.
      memory = "512M"
    }
  }

  # Names exactly as handlers/config.py reads them; values as strings.
  environment = {
    WATCHDOG_JOBS                    = join(",", var.jobs)
    WATCHDOG_LEDGER                  = "firestore://${google_firestore_database.ledger.name}"
    WATCHDOG_PROJECT                 = var.project_id
    WATCHDOG_REGION                  = var.region
    WATCHDOG_TOLERANCE_CORES         = tostring(var.tolerance_cores)
    WATCHDOG_GRACE_SECONDS           = tostring(var.grace_seconds)
    WATCHDOG_DEDUP_TTL_DAYS          = tostring(var.dedup_ttl_days)
    WATCHDOG_ROLLBACK_MODE           = var.rollback_mode
    WATCHDOG_ROLLBACK_THRESHOLD      = tostring(var.rollback_threshold)
    WATCHDOG_ROLLBACK_COOLDOWN_HOURS = tostring(var.rollback_cooldown_hours)
    WATCHDOG_ROLLBACK_CPU            = var.rollback_cpu
    WATCHDOG_ROLLBACK_MEMORY         = var.rollback_memory
    WATCHDOG_ROLLBACK_CORES          = tostring(var.rollback_cores)
    WATCHDOG_ROLLBACK_CORE_VARS      = join(",", var.rollback_core_vars)
    WATCHDOG_SLACK_CHANNEL           = var.slack_channel
    WATCHDOG_SLACK_ALERT_CHANNEL     = var.slack_alert_channel
    WATCHDOG_SLACK_ONCALL_GROUP      = var.slack_oncall_group
    WATCHDOG_DIGEST_DAYS             = tostring(var.digest_days)
    WATCHDOG_AUDIT_TOPIC             = google_pubsub_topic.audits.id
    WATCHDOG_SLACK_AUDIT_CHANNEL     = var.slack_audit_channel
  }
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.build/watchdog-source.zip"

  # Directory names skip the whole directory. pyproject.toml holds only the
  # tools' settings, and would make the buildpack treat the source as a package.
  excludes = [
    ".ci", ".git", ".gitignore", ".hypothesis", ".pytest_cache", ".ruff_cache",
    ".venv", ".watchdog", "Makefile", "pyproject.toml", "requirements-dev.txt",
    "__pycache__", "**/__pycache__",
    "bench", "docs", "r", "samples", "terraform", "tests",
  ]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs that Terraform uploads; the function's deployments are in the audit logs already.
  name                        = "${var.project_id}-core-override-watchdog-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  # Each deployment uploads a new object (its name has the archive's hash).
  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  name   = "watchdog-source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "watchdog" {
  for_each = local.functions

  name        = each.value.name
  location    = var.region
  description = "Core-override watchdog: ${each.value.entry_point} (main.py)."

  build_config {
    runtime         = "python311"
    entry_point     = each.value.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    timeout_seconds                  = var.function_timeout_seconds
    max_instance_count               = var.max_instances
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    service_account_email            = google_service_account.watchdog.email
    all_traffic_on_latest_revision   = true

    # Pub/Sub in the same project counts as internal traffic.
    ingress_settings = "ALLOW_INTERNAL_ONLY"

    environment_variables = local.environment

    dynamic "secret_environment_variables" {
      for_each = var.slack_token_secret == null ? [] : [var.slack_token_secret]
      content {
        key        = "SLACK_BOT_TOKEN"
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = var.slack_token_secret_version
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.slack_token_secret == null || var.slack_channel != ""
      error_message = "slack_channel is needed when slack_token_secret is set (handlers/config.py refuses the token without a channel)."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.slack_token,
    google_project_iam_member.ledger,
  ]
}
