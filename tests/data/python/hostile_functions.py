"""Written for ActionForge's tests (not a public document): functions that misbehave on purpose,
to show that the sandbox of verifiers/sandbox.py contains each of them.

Loaded as a catalog it is only parsed; called through the sandbox each function really runs.
Nothing runs at import time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Any


def add_numbers(a: int, b: int) -> dict[str, Any]:
    """Add two numbers and say who did it.

    Args:
        a: The first number.
        b: The second number.

    Returns:
        The sum, with the uid, PID and working directory of the process that computed it.
    """
    return {"sum": a + b, "uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd()}


def divide(a: float, b: float) -> float:
    """Divide a by b.

    Args:
        a: The dividend.
        b: The divisor; zero raises ZeroDivisionError.
    """
    return a / b


def spin_forever() -> None:
    """Loop forever on the CPU."""
    while True:
        pass


def sleep_forever() -> None:
    """Sleep without using the CPU, until killed."""
    while True:
        signal.pause()


def fork_storm() -> None:
    """Fork without end; every process keeps forking, and failures are ignored."""
    while True:
        try:
            os.fork()
        except OSError:
            pass


def start_background_process(seconds: int = 300) -> int:
    """Start `sleep` in the background and return at once, leaving it running.

    Args:
        seconds: How long the background process would sleep.
    """
    return subprocess.Popen(["sleep", str(seconds)]).pid


def allocate(gigabytes: int = 10) -> int:
    """Allocate a buffer of the given size in one go.

    Args:
        gigabytes: The size of the buffer in GiB.
    """
    return len(bytearray(gigabytes * 1024**3))


def grow_memory(megabytes_per_step: int = 16) -> int:
    """Keep allocating (and touching) memory until something stops it.

    Args:
        megabytes_per_step: The size of each allocation in MiB.
    """
    blocks = []
    while True:
        blocks.append(b"x" * (megabytes_per_step * 1024 * 1024))


def connect_tcp(host: str, port: int) -> str:
    """Open a TCP connection and read the first bytes after a Redis PING.

    Args:
        host: Host name or address.
        port: TCP port.
    """
    with socket.create_connection((host, port), timeout=2) as connection:
        connection.sendall(b"PING\r\n")
        return connection.recv(64).decode(errors="replace")


def connect_unix(path: str) -> str:
    """Connect to a Unix domain socket by its file path.

    Args:
        path: The socket file.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)
        return "connected"


def write_file(path: str, text: str = "escaped") -> str:
    """Write text to a file at any path.

    Args:
        path: Where to write.
        text: What to write.
    """
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return os.path.abspath(path)


def read_file(path: str) -> str:
    """Read a text file.

    Args:
        path: The file to read.
    """
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def environment() -> dict[str, str]:
    """Return every environment variable the function can see."""
    return dict(os.environ)


def kill_others(pid: int) -> dict[str, str]:
    """Send SIGKILL to the parent, to PID 1, to the given PID and to every process it may signal.

    Args:
        pid: A PID to kill, e.g. the caller's own.

    Returns:
        What happened to each attempt.
    """
    outcomes = {}
    for name, target in (("parent", os.getppid()), ("init", 1), ("pid", pid), ("all", -1)):
        try:
            os.kill(target, signal.SIGKILL)
            outcomes[name] = "sent"
        except OSError as exc:
            outcomes[name] = type(exc).__name__
    return outcomes


def list_processes() -> list[int]:
    """The PIDs the function can see in /proc."""
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


def print_a_lot(megabytes: int = 50) -> str:
    """Print the given amount of text on stdout.

    Args:
        megabytes: How much to print, in MB.
    """
    print("x" * (megabytes * 1_000_000))
    return "printed"


def huge_result(megabytes: int = 50) -> str:
    """Return a string of the given size.

    Args:
        megabytes: The size of the string, in MB.
    """
    return "x" * (megabytes * 1_000_000)


def a_set() -> set[int]:
    """Return a set, which JSON cannot represent."""
    return {1, 2, 3}


def new_user_namespace() -> int:
    """Try to create a user namespace (which would give capabilities over new namespaces)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        raise PermissionError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return 0
