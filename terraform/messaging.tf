# Pub/Sub: the topics, and our own push subscriptions to the functions.
#
# The functions are deployed without event triggers: an Eventarc trigger owns
# its subscription (24 h retention, no dead-letter topic, and edits may not
# survive a redeploy), while these subscriptions are ours to configure. A
# CloudEvent function under functions-framework accepts a raw push body.
# https://cloud.google.com/pubsub/docs/push
# https://cloud.google.com/pubsub/docs/replay-overview

locals {
  retention = "${var.message_retention_days * 86400}s"

  # The Pub/Sub service agent forwards undeliverable messages to the
  # dead-letter topic and signs the push requests' OIDC tokens.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Our push subscriptions: topic, and the function (functions.tf) it feeds.
  # Replays go to the log-entry function too: it audits a message that
  # carries a replay_id apart from production (handlers/audit_mode.py).
  pushed = {
    log_entries = { topic = google_pubsub_topic.training_logs.id, function = "log_entries" }
    ticks       = { topic = google_pubsub_topic.ticks.id, function = "ticks" }
    audits      = { topic = google_pubsub_topic.audits.id, function = "log_entries" }
  }
}

resource "google_pubsub_topic" "training_logs" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; the messages are log entries that Cloud Logging already holds with the same encryption.
  name       = "training-logs"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "ticks" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; a tick carries no data.
  name       = "watchdog-ticks"
  depends_on = [google_project_service.apis]
}

# Replayed log entries for audits: `python main.py replay` publishes here.
resource "google_pubsub_topic" "audits" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; the messages are copies of log entries that Cloud Logging already holds.
  name       = "watchdog-audit"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; the messages are copies of the other topics' messages.
  name       = "watchdog-dead-letter"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "push" {
  for_each = local.pushed

  name  = "watchdog-${replace(each.key, "_", "-")}"
  topic = each.value.topic

  # For a push subscription this is how long Pub/Sub waits for the answer.
  ack_deadline_seconds = var.function_timeout_seconds

  # Acknowledged messages are kept too, so that seek can replay them.
  retain_acked_messages      = true
  message_retention_duration = local.retention

  expiration_policy {
    ttl = "" # never expires, however long the jobs stay idle
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    # functions-framework takes the topic of a raw push body from the path
    # (projects/P/topics/T), and gives it to the function as the event's source.
    push_endpoint = "${google_cloudfunctions2_function.watchdog[each.value.function].service_config[0].uri}/${each.value.topic}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.watchdog[each.value.function].service_config[0].uri
    }
  }

  lifecycle {
    precondition {
      condition     = var.dedup_ttl_days >= var.message_retention_days
      error_message = "dedup_ttl_days must be at least message_retention_days, or a replay by seek would find its deduplication records expired."
    }
  }
}

# Pull only, to inspect what could not be delivered:
#   gcloud pubsub subscriptions pull watchdog-dead-letter-inspect --limit 10
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "watchdog-dead-letter-inspect"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  retain_acked_messages      = true
  message_retention_duration = "${31 * 86400}s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = google_pubsub_subscription.push

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
