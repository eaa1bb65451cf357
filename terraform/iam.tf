# Identities, each with the least it needs.
#
# - The watchdog (both functions): read and update the watched jobs and read
#   their executions, on each job only; act as the jobs' service account, on
#   that account only (an update re-submits the job's identity); use the
#   ledger's database; read the Slack token secret, that secret only.
# - The push identity: invoke the two functions, nothing else.
# https://cloud.google.com/run/docs/reference/iam/roles
# https://cloud.google.com/run/docs/configuring/jobs/service-identity

locals {
  watchdog_member = "serviceAccount:${google_service_account.watchdog.email}"
  push_member     = "serviceAccount:${google_service_account.push.email}"
}

resource "google_service_account" "watchdog" {
  account_id   = "core-override-watchdog"
  display_name = "Core-override watchdog functions"
}

resource "google_service_account" "push" {
  account_id   = "core-override-watchdog-push"
  display_name = "Pub/Sub push to the core-override watchdog"
}

# What handlers/jobs.py and handlers/runapi.py call on a job: GetJob, UpdateJob,
# ListExecutions (and GetExecution). Narrower than roles/run.developer, which
# could also run, cancel or delete them.
resource "google_project_iam_custom_role" "job_rollback" {
  role_id     = "coreOverrideWatchdogJob"
  title       = "Core-override watchdog on a job"
  description = "Read and update one Cloud Run job and read its executions."
  permissions = [
    "run.executions.get",
    "run.executions.list",
    "run.jobs.get",
    "run.jobs.update",
  ]
}

resource "google_cloud_run_v2_job_iam_member" "watchdog" {
  for_each = toset(var.jobs)

  location = var.region
  name     = each.value
  role     = google_project_iam_custom_role.job_rollback.name
  member   = local.watchdog_member
}

# UpdateJob is a long-running operation that the client polls; operations
# are resources of the project's location, not of the job, so this one
# permission is granted on the project.
resource "google_project_iam_custom_role" "run_operations" {
  role_id     = "coreOverrideWatchdogOperations"
  title       = "Core-override watchdog: Cloud Run operations"
  description = "Follow the long-running operation of a job update."
  permissions = ["run.operations.get"]
}

resource "google_project_iam_member" "run_operations" {
  project = var.project_id
  role    = google_project_iam_custom_role.run_operations.name
  member  = local.watchdog_member
}

resource "google_service_account_iam_member" "act_as_training" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.training_service_account}"
  role               = "roles/iam.serviceAccountUser"
  member             = local.watchdog_member
}

# The ledger's database only: the condition names it.
resource "google_project_iam_member" "ledger" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.watchdog_member

  condition {
    title       = "core-override-watchdog ledger"
    description = "Only the watchdog's own Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.ledger.name}\""
  }
}

resource "google_secret_manager_secret_iam_member" "slack_token" {
  count = var.slack_token_secret == null ? 0 : 1

  project   = var.project_id
  secret_id = var.slack_token_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = local.watchdog_member
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = google_cloudfunctions2_function.watchdog

  location = var.region
  name     = each.value.name # a function's service has the function's name
  role     = "roles/run.invoker"
  member   = local.push_member
}

# The Pub/Sub service agent signs the push requests' OIDC tokens as the push
# identity (needed in projects created before April 2021; harmless after).
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
