# The log sink: the entries of the watched jobs that the parser reads, to the
# training-logs topic. Every match is a function invocation, so it stays narrow.
#
# The filter is handlers/sink_filter.py's `sink_filter(jobs)`, written out
# here: tests/test_terraform.py renders this text for the default jobs and
# requires it to equal that function's query, so a change to either side
# fails the tests until both agree. The test prints the expected text.
# https://cloud.google.com/logging/docs/view/logging-query-language

locals {
  sink_jobs = join(" OR ", [for job in sort(var.jobs) : "\"${job}\""])

  # A heredoc keeps the query's backslashes as they are: `\\s+` is the query's
  # own escape for the regex's `\s+`.
  sink_filter_lines = <<-EOT
    resource.type="cloud_run_job"
    resource.labels.job_name=(${local.sink_jobs})
    (
      jsonPayload.marker:*
      OR textPayload=~"(?i)override|parallelly|availablecores|detectcores|cores|verification|robyn_run|cgroups|training\\s+completed"
      OR (log_id("cloudaudit.googleapis.com/system_event") AND protoPayload.methodName="/Jobs.RunJob")
      OR (log_id("run.googleapis.com/varlog/system") AND severity>=WARNING)
    )
  EOT

  sink_filter = chomp(local.sink_filter_lines)
}

resource "google_logging_project_sink" "training_logs" {
  name                   = "core-override-watchdog"
  description            = "Entries of the watched Cloud Run jobs that the core-override watchdog reads."
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.training_logs.id}"
  filter                 = local.sink_filter
  unique_writer_identity = true
}

# The sink's writer may publish to its topic, and nothing else.
resource "google_pubsub_topic_iam_member" "sink_writer" {
  topic  = google_pubsub_topic.training_logs.id
  role   = "roles/pubsub.publisher"
  member = google_logging_project_sink.training_logs.writer_identity
}
