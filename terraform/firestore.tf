# The ledger: a Firestore database in Native mode, and a TTL policy on
# `expire_at` for each collection group whose documents carry it
# (handlers/ledger/firestore.py: TTL_FIELD, EXPIRING). Verdicts and decisions
# never expire. No composite index is needed (INDEXES is empty there).
# https://cloud.google.com/firestore/docs/ttl

locals {
  ttl_field       = "expire_at"
  ttl_collections = ["watchdog_executions", "watchdog_observations", "watchdog_completions"]
}

resource "google_firestore_database" "ledger" {
  name        = var.firestore_database
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  # Verdicts and rollback decisions are the only record of what the watchdog
  # decided: recoverable for 7 days, and the database is not deleted by mistake.
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "DELETE"

  depends_on = [google_project_service.apis]
}

resource "google_firestore_field" "ttl" {
  for_each = toset(local.ttl_collections)

  database   = google_firestore_database.ledger.name
  collection = each.value
  field      = local.ttl_field

  ttl_config {}

  # No query reads expire_at: its single-field indexes would only cost writes.
  index_config {}
}
