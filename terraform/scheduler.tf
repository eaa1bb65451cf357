# The ticks: every ten minutes by default, one message on the ticks topic.
# Cloud Scheduler publishes as its service agent, which holds the right to.
# https://cloud.google.com/scheduler/docs/creating#pubsub
resource "google_cloud_scheduler_job" "tick" {
  name        = "watchdog-tick"
  description = "Ticks of the core-override watchdog: sweep, due verdicts, rollbacks, digest."
  region      = var.region
  schedule    = var.tick_schedule
  time_zone   = "Etc/UTC"

  # A missed tick is made up by the next one, so no retries of its own.
  retry_config {
    retry_count = 0
  }

  pubsub_target {
    topic_name = google_pubsub_topic.ticks.id
    data       = base64encode("tick")
  }

  depends_on = [google_project_service.apis]
}
