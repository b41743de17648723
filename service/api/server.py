"""Running the API with uvicorn: in a background thread (for `actionforge run` and the tests)
or in the foreground (`actionforge serve`), ending open event streams when it stops."""

from __future__ import annotations

import socket
import threading
import time
from types import FrameType, TracebackType

import uvicorn
from starlette.types import ASGIApp

from unified.errors import ActionForgeError

_START_TIMEOUT_S = 60.0


def stopping_event(app: object) -> threading.Event:
    """Set once the server of `app` begins to stop. Responses that would go on for as long as
    a job runs (event streams) end then: uvicorn's graceful shutdown waits for every open
    response before it stops."""
    state = getattr(app, "state", None)
    if state is None:
        return threading.Event()
    event: threading.Event | None = getattr(state, "stopping", None)
    if event is None:
        event = state.stopping = threading.Event()
    return event


class ApiServer(uvicorn.Server):
    """uvicorn's server, which sets the app's `stopping_event` when a signal stops it."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        stopping_event(self.config.app).set()
        super().handle_exit(sig, frame)


class BackgroundServer:
    """Serves an app with uvicorn in a daemon thread on `host:port` (port 0: any free port).

    Use it as a context manager: on entry the server is accepting connections at `url`; on exit
    it has shut down (lifespan shutdown included).
    """

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._log_level = log_level
        self._socket: socket.socket | None = None
        self._server: ApiServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL the server answers at."""
        if self._socket is None:
            raise RuntimeError("the server has not been started")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Bind the socket, start serving, and return once the server accepts connections."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it each small response waits ~40 ms for
        # the client's delayed ACK (Nagle's algorithm).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise ActionForgeError(
                f"cannot listen on {self._host}:{self._port} ({exc.strerror}); "
                "pick another --port or stop what is using it"
            ) from None
        self._socket = sock
        config = uvicorn.Config(self._app, log_level=self._log_level, lifespan="on")
        self._server = ApiServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="api-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                url = self.url
                self.stop()
                raise ActionForgeError(f"the API server did not start at {url}; see its log")
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask the server to finish its requests and stop; wait until it has."""
        stopping_event(self._app).set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
