"""The core-override watchdog: from Cloud Run job logs to verdicts and actions."""
