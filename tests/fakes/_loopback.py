"""The HTTP server under every fake: a free 127.0.0.1 port, a daemon thread."""

from __future__ import annotations

import functools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.root = f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
        self._server.server_close()
