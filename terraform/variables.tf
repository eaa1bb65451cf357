# Inputs of the deployment. The watchdog's own settings are passed to the
# functions as the environment variables of handlers/config.py, whose defaults
# these defaults repeat (tests/test_terraform.py checks that they agree).

variable "project_id" {
  description = "Project of the watched Cloud Run jobs, where the watchdog is deployed too."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id such as my-project-123."
  }
}

variable "region" {
  description = "Region of the watched jobs (WATCHDOG_REGION), and of the functions, topics' consumers and scheduler."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region such as europe-west1."
  }
}

variable "jobs" {
  description = "Cloud Run job names to watch (WATCHDOG_JOBS). The sink's filter names them, and the watchdog may read and roll back these jobs only."
  type        = list(string)
  default     = ["mmm-app-training", "mmm-app-dev-training"]

  validation {
    condition     = length(var.jobs) > 0 && length(distinct(var.jobs)) == length(var.jobs)
    error_message = "jobs must name at least one job, each once."
  }

  validation {
    condition     = alltrue([for job in var.jobs : can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", job))])
    error_message = "Each job must be a Cloud Run job name: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "training_service_account" {
  description = "Email of the service account the watched jobs run as. A rollback re-submits the job, so the watchdog must act as this account (and only this one)."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[a-z0-9.-]+\\.gserviceaccount\\.com$", var.training_service_account))
    error_message = "training_service_account must be a service account email, such as trainer@my-project.iam.gserviceaccount.com."
  }
}

variable "firestore_database" {
  description = "Name of the Firestore database (Native mode) created for the ledger (WATCHDOG_LEDGER=firestore://NAME)."
  type        = string
  default     = "core-override-watchdog"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{3,62}$", var.firestore_database))
    error_message = "firestore_database must be 4 to 63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database: a region such as europe-west1, or a multi-region such as eur3."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^([a-z]+-[a-z]+[0-9]+|nam[0-9]+|eur[0-9]+)$", var.firestore_location))
    error_message = "firestore_location must be a region such as europe-west1, or a multi-region such as eur3."
  }
}

variable "rollback_mode" {
  description = "What a rollback does (WATCHDOG_ROLLBACK_MODE): off, dry-run (decide and report only), env (empty the override) or resources (back to the rollback CPU, memory and cores)."
  type        = string
  default     = "dry-run"

  validation {
    condition     = contains(["off", "dry-run", "env", "resources"], var.rollback_mode)
    error_message = "rollback_mode must be one of off, dry-run, env, resources."
  }
}

variable "rollback_threshold" {
  description = "Consecutive failing verdicts of a job that trigger a rollback (WATCHDOG_ROLLBACK_THRESHOLD)."
  type        = number
  default     = 3

  validation {
    condition     = var.rollback_threshold >= 1 && floor(var.rollback_threshold) == var.rollback_threshold
    error_message = "rollback_threshold must be a whole number, 1 or more."
  }
}

variable "rollback_cooldown_hours" {
  description = "Hours after an applied rollback of a job before another one (WATCHDOG_ROLLBACK_COOLDOWN_HOURS)."
  type        = number
  default     = 24

  validation {
    condition     = var.rollback_cooldown_hours >= 0
    error_message = "rollback_cooldown_hours must be zero or more."
  }
}

variable "rollback_cpu" {
  description = "CPU limit the resources mode sets (WATCHDOG_ROLLBACK_CPU)."
  type        = string
  default     = "4"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?m?$", var.rollback_cpu))
    error_message = "rollback_cpu must be a CPU quantity such as 4 or 4000m."
  }
}

variable "rollback_memory" {
  description = "Memory limit the resources mode sets (WATCHDOG_ROLLBACK_MEMORY)."
  type        = string
  default     = "16Gi"

  validation {
    condition     = can(regex("^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$", var.rollback_memory))
    error_message = "rollback_memory must be a memory quantity such as 16Gi."
  }
}

variable "rollback_cores" {
  description = "Value the resources mode gives the core-count variables (WATCHDOG_ROLLBACK_CORES)."
  type        = number
  default     = 4

  validation {
    condition     = var.rollback_cores >= 1 && floor(var.rollback_cores) == var.rollback_cores
    error_message = "rollback_cores must be a whole number, 1 or more."
  }
}

variable "rollback_core_vars" {
  description = "The jobs' core-count environment variables (WATCHDOG_ROLLBACK_CORE_VARS)."
  type        = list(string)
  default     = ["PARALLELLY_OVERRIDE_CORES"]

  validation {
    condition     = length(var.rollback_core_vars) > 0 && alltrue([for name in var.rollback_core_vars : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", name))])
    error_message = "rollback_core_vars must list environment variable names."
  }
}

variable "tolerance_cores" {
  description = "Cores below the override that still count as effective (WATCHDOG_TOLERANCE_CORES)."
  type        = number
  default     = 1

  validation {
    condition     = var.tolerance_cores >= 0 && floor(var.tolerance_cores) == var.tolerance_cores
    error_message = "tolerance_cores must be a whole number, zero or more."
  }
}

variable "grace_seconds" {
  description = "Seconds after an execution's completion entry before its verdict (WATCHDOG_GRACE_SECONDS)."
  type        = number
  default     = 120

  validation {
    condition     = var.grace_seconds >= 0
    error_message = "grace_seconds must be zero or more."
  }
}

variable "dedup_ttl_days" {
  description = "Days the ledger keeps deduplication records (WATCHDOG_DEDUP_TTL_DAYS); Firestore's TTL policies delete them after that. At least message_retention_days, so that a replay by seek is still deduplicated."
  type        = number
  default     = 35

  validation {
    condition     = var.dedup_ttl_days > 0
    error_message = "dedup_ttl_days must be more than zero."
  }
}

variable "digest_days" {
  description = "Days each Slack digest covers (WATCHDOG_DIGEST_DAYS); 0: no digest."
  type        = number
  default     = 7

  validation {
    condition     = var.digest_days >= 0 && floor(var.digest_days) == var.digest_days
    error_message = "digest_days must be a whole number, zero or more."
  }
}

variable "slack_token_secret" {
  description = "Id of the Secret Manager secret (in project_id) that holds the Slack bot token, given to the functions as SLACK_BOT_TOKEN. null: no Slack; summaries and alerts go to the functions' logs."
  type        = string
  default     = null

  validation {
    condition     = var.slack_token_secret == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.slack_token_secret))
    error_message = "slack_token_secret must be a secret id (letters, digits, _ and -), or null."
  }
}

variable "slack_token_secret_version" {
  description = "Version of the Slack token secret: latest (a new version is read when an instance starts), or a version number."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.slack_token_secret_version))
    error_message = "slack_token_secret_version must be latest or a version number."
  }
}

variable "slack_channel" {
  description = "Slack channel id for the summaries and the digest (WATCHDOG_SLACK_CHANNEL); needed with slack_token_secret."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([CGD][A-Z0-9]{6,})?$", var.slack_channel))
    error_message = "slack_channel must be empty or a channel id such as C0123ABCD."
  }
}

variable "slack_alert_channel" {
  description = "Slack channel id for streak notices and rollback alerts (WATCHDOG_SLACK_ALERT_CHANNEL); empty: slack_channel."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([CGD][A-Z0-9]{6,})?$", var.slack_alert_channel))
    error_message = "slack_alert_channel must be empty or a channel id such as C0123ABCD."
  }
}

variable "slack_oncall_group" {
  description = "Slack user-group id the rollback alerts mention (WATCHDOG_SLACK_ONCALL_GROUP); empty: no mention."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(S[A-Z0-9]{6,})?$", var.slack_oncall_group))
    error_message = "slack_oncall_group must be empty or a user-group id such as S0123ABC."
  }
}

variable "slack_audit_channel" {
  description = "Slack channel id for the reports of audit replays (WATCHDOG_SLACK_AUDIT_CHANNEL); empty: the functions' logs."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([CGD][A-Z0-9]{6,})?$", var.slack_audit_channel))
    error_message = "slack_audit_channel must be empty or a channel id such as C0123ABCD."
  }
}

variable "message_retention_days" {
  description = "Days the subscriptions keep messages, acknowledged ones included, so that `gcloud pubsub subscriptions seek` can replay them (7 to 31)."
  type        = number
  default     = 7

  validation {
    condition     = var.message_retention_days >= 7 && var.message_retention_days <= 31 && floor(var.message_retention_days) == var.message_retention_days
    error_message = "message_retention_days must be a whole number from 7 to 31."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a message before it goes to the dead-letter topic (5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be from 5 to 100."
  }
}

variable "function_timeout_seconds" {
  description = "Request timeout of the functions, and the subscriptions' acknowledgement deadline (180 to 600). It must cover a rollback: the job update is awaited for up to 120 s (WATCHDOG_ROLLBACK_TIMEOUT_SECONDS), with Run API calls of up to about 21 s each around it."
  type        = number
  default     = 300

  validation {
    condition     = var.function_timeout_seconds >= 180 && var.function_timeout_seconds <= 600
    error_message = "function_timeout_seconds must be from 180 (a rollback's 120 s wait plus its API calls) to 600 (Pub/Sub's largest acknowledgement deadline)."
  }
}

variable "max_instances" {
  description = "Most instances of each function. Each instance answers one message at a time."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100
    error_message = "max_instances must be from 1 to 100."
  }
}

variable "tick_schedule" {
  description = "Cron schedule (UTC) of the ticks that sweep for silent executions, finalise due verdicts and post the digest."
  type        = string
  default     = "*/10 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.tick_schedule))) == 5
    error_message = "tick_schedule must be a five-field cron expression, such as */10 * * * *."
  }
}

variable "build_service_account" {
  description = "Full resource name (projects/P/serviceAccounts/EMAIL) of the account Cloud Build builds the functions with; null: the project's default build account."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must be projects/PROJECT/serviceAccounts/EMAIL, or null."
  }
}
