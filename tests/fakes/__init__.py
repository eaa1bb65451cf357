"""Local fakes of Google APIs that the real client libraries can talk to."""
