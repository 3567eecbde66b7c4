"""Serve an ASGI application (an emulator) over real HTTP on loopback, in a background thread.

Tests and the demo talk to emulators through real sockets, exactly as billbridge talks to the
real providers: ``with serve(app) as server: httpx.get(server.url + "/...")``.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["RunningServer", "serve"]


class RunningServer:
    """A uvicorn server running in a daemon thread; stop it with :meth:`stop` or ``with``."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        sockets = [s for srv in server.servers for s in srv.sockets]
        self.port: int = sockets[0].getsockname()[1]
        self.host = host
        self.url = f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) and return once it accepts requests."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Emulators are hit by benchmarks with many parallel keep-alive connections.
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"emulator-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server on {host}:{port} stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the server on {host}:{port} did not start in {startup_timeout}s")
        time.sleep(0.01)
    return RunningServer(server, thread, host)
