"""Entry points of the core-override watchdog, and its command line.

Cloud Functions (2nd gen) calls `handle_log_entry` for every message of the
training-logs subscription and `handle_tick` for every scheduler tick.
`python main.py --help` lists the commands.
"""

import functions_framework

from handlers import app


@functions_framework.cloud_event
def handle_log_entry(cloud_event) -> None:
    app.handle_log_entry(cloud_event)


@functions_framework.cloud_event
def handle_tick(cloud_event) -> None:
    app.handle_tick(cloud_event)


if __name__ == "__main__":
    from handlers.cli import main

    raise SystemExit(main())
