output "function_uris" {
  description = "URIs of the functions, by entry point; the push subscriptions deliver there."
  value       = { for key, fn in google_cloudfunctions2_function.watchdog : fn.build_config[0].entry_point => fn.service_config[0].uri }
}

output "function_names" {
  description = "Names of the functions, for `gcloud functions logs read NAME --gen2 --region REGION`."
  value       = [for fn in google_cloudfunctions2_function.watchdog : fn.name]
}

output "watchdog_service_account" {
  description = "Email of the functions' service account."
  value       = google_service_account.watchdog.email
}

output "push_service_account" {
  description = "Email of the identity the push subscriptions sign their OIDC tokens as."
  value       = google_service_account.push.email
}

output "topics" {
  description = "Pub/Sub topics: training logs, ticks, audits and dead letters."
  value = {
    training_logs = google_pubsub_topic.training_logs.id
    ticks         = google_pubsub_topic.ticks.id
    audits        = google_pubsub_topic.audits.id
    dead_letter   = google_pubsub_topic.dead_letter.id
  }
}

output "subscriptions" {
  description = "Push subscriptions to the functions (seekable), and the dead-letter pull subscription."
  value = merge(
    { for key, sub in google_pubsub_subscription.push : key => sub.id },
    { dead_letter = google_pubsub_subscription.dead_letter.id },
  )
}

output "sink_filter" {
  description = "The log sink's filter, as deployed."
  value       = google_logging_project_sink.training_logs.filter
}

output "sink_writer_identity" {
  description = "Identity the log sink publishes as."
  value       = google_logging_project_sink.training_logs.writer_identity
}

output "ledger" {
  description = "WATCHDOG_LEDGER of the functions: the Firestore database."
  value       = local.environment["WATCHDOG_LEDGER"]
}

output "scheduler_job" {
  description = "The tick's Cloud Scheduler job (pause it to stop the ticks)."
  value       = google_cloud_scheduler_job.tick.id
}
