"""The child side of the sandbox: `verifiers.sandbox` runs this file as a script, as root, with
``python -I -S -B``. It reads one request (JSON) on stdin and writes one result (JSON) on stdout.

Only the standard library is imported here, and not the `verifiers` package, so that a call
costs one bare interpreter start. Two processes take part in a call:

- the *supervisor* (this script's process, root, in the caller's PID namespace) creates new
  mount, network, IPC and PID namespaces, makes every mount read-only, mounts a private tmpfs
  on /tmp, forks, then watches the wall clock and the result pipe;
- the *init* (the fork: PID 1 of the new PID namespace) mounts a /proc of its namespace, sets
  resource limits, drops to a uid of its own, installs a seccomp filter and calls the function.

When the init ends, however it ends, the kernel kills every other process of its PID namespace,
so nothing the function started outlives the call.

Namespaces are made with ``libc.unshare`` through ctypes rather than the ``unshare`` command:
the order of the steps (namespaces, mounts, fork, limits, uid, seccomp) is then ours to fix, a
refusal comes back as an errno that we report precisely, nothing depends on the options of one
util-linux version, and a call costs one interpreter instead of a command plus an interpreter.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import struct
import sys
import time
import types

TYPE_CHECKING = False
if TYPE_CHECKING:  # not `from typing`: typing costs milliseconds to import, on every call
    from collections.abc import Callable
    from typing import Any, NoReturn

SANDBOX_UID_BASE = 2_000_000_000
"""The function runs as uid (and gid) SANDBOX_UID_BASE + the supervisor's pid: a uid that owns
no file, unique to the call, so that RLIMIT_NPROC counts this call's processes only."""

WORKDIR = "/tmp"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"

DETAIL_LIMIT = 1000  # characters of an exception's message kept in a result's detail

EXIT_CPU = 86  # the init's exit status after SIGXCPU
EXIT_MEMORY = 87  # MemoryError, and not even the prepared message could be written
EXIT_SETUP = 88  # the sandbox could not be set up; the message says why

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NAMESPACES = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
_MOUNT_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """The sandbox could not be set up (the message says which step and why)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.errno = code


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SetupError(f"{what} failed: [Errno {code}] {os.strerror(code)}", code)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    def enc(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    result = _libc.mount(
        enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data) if data else None
    )
    _check(result, f"mount {fstype or ''} {target}".replace("  ", " "))


def _prctl(option: int, value: int, what: str) -> None:
    zero = ctypes.c_ulong(0)
    _check(_libc.prctl(option, ctypes.c_ulong(value), zero, zero, zero), what)


# ---- seccomp -----------------------------------------------------------------------------------
# A classic-BPF filter, written out here because the standard library has no binding for
# libseccomp (a binding would add a Python package and a system library for 30 lines). It keeps
# the function on IPv4/IPv6 sockets (useless in an empty network namespace) and connected AF_UNIX
# socket pairs: no socket(AF_UNIX) to reach a host service through a socket file (PostgreSQL,
# Docker, ...), which a network namespace does not isolate; no io_uring (whose operations bypass
# seccomp); no new namespaces (an unprivileged user namespace would hand the function
# capabilities over fresh namespaces); no kernel keyrings (the session keyring is root's).
# The aarch64 numbers are the kernel's generic table; only x86_64 is exercised by the tests.

_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_AARCH64 = 0xC00000B7
_SYSCALLS = {
    # name: (x86_64, aarch64)
    "socket": (41, 198),
    "socketpair": (53, 199),
    "clone": (56, 220),
    "unshare": (272, 97),
    "setns": (308, 268),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "clone3": (435, 435),
}
_ARCHES = {"x86_64": (0, _AUDIT_ARCH_X86_64), "aarch64": (1, _AUDIT_ARCH_AARCH64)}

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_AND_K = 0x54
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_OFFSET_NR = 0
_OFFSET_ARCH = 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of syscall argument `index` in seccomp_data (little-endian)."""
    return 16 + 8 * index


_Instruction = tuple[int, str | int, str | int, int]  # code, jump-if-true, jump-if-false, k


def seccomp_program(machine: str) -> bytes:
    """The filter for `machine` (``os.uname().machine``) as packed ``struct sock_filter``s."""
    if machine not in _ARCHES or sys.byteorder != "little":
        raise SetupError(
            f"no seccomp filter for the {machine} architecture (x86_64 and aarch64 are supported)"
        )
    column, audit_arch = _ARCHES[machine]
    nr = {name: numbers[column] for name, numbers in _SYSCALLS.items()}
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    code: list[_Instruction | str] = [
        (_BPF_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        (_BPF_JEQ_K, 0, "kill", audit_arch),
        (_BPF_LD_W_ABS, 0, 0, _OFFSET_NR),
    ]
    if machine == "x86_64":  # the x32 ABI's syscall numbers have bit 30 set
        code.append((_BPF_JGE_K, "enosys", 0, 0x40000000))
    code += [
        (_BPF_JEQ_K, "socket", 0, nr["socket"]),
        (_BPF_JEQ_K, "socketpair", 0, nr["socketpair"]),
        (_BPF_JEQ_K, "clone", 0, nr["clone"]),
        (_BPF_JEQ_K, "enosys", 0, nr["clone3"]),  # flags out of reach; glibc falls back to clone
    ]
    for name in ("unshare", "setns", "add_key", "request_key", "keyctl"):
        code.append((_BPF_JEQ_K, "eperm", 0, nr[name]))
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        code.append((_BPF_JEQ_K, "eperm", 0, nr[name]))
    code += [
        (_BPF_RET_K, 0, 0, _RET_ALLOW),
        "socket",
        (_BPF_LD_W_ABS, 0, 0, _arg_low(0)),
        (_BPF_JEQ_K, "allow", 0, 2),  # AF_INET
        (_BPF_JEQ_K, "allow", "eperm", 10),  # AF_INET6
        "socketpair",
        (_BPF_LD_W_ABS, 0, 0, _arg_low(1)),
        (_BPF_AND_K, 0, 0, 0xF),  # the type without SOCK_NONBLOCK / SOCK_CLOEXEC
        (_BPF_JEQ_K, "allow", "eperm", 1),  # SOCK_STREAM: connected, cannot send elsewhere
        "clone",
        (_BPF_LD_W_ABS, 0, 0, _arg_low(0)),
        (_BPF_JSET_K, "eperm", "allow", CLONE_NAMESPACES),
        "eperm",
        (_BPF_RET_K, 0, 0, eperm),
        "enosys",
        (_BPF_RET_K, 0, 0, enosys),
        "kill",
        (_BPF_RET_K, 0, 0, _RET_KILL_PROCESS),
        "allow",
        (_BPF_RET_K, 0, 0, _RET_ALLOW),
    ]
    return _assemble(code)


def _assemble(code: list[_Instruction | str]) -> bytes:
    labels: dict[str, int] = {}
    instructions: list[_Instruction] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)

    def offset(target: str | int, position: int) -> int:
        if isinstance(target, int):
            return target
        jump = labels[target] - position - 1
        assert 0 <= jump <= 255, "classic BPF jumps only forward, at most 255 instructions"
        return jump

    packed = b""
    for position, (op, if_true, if_false, k) in enumerate(instructions):
        packed += struct.pack("=HBBI", op, offset(if_true, position), offset(if_false, position), k)
    return packed


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def install_seccomp(program: bytes) -> None:
    """Install `program` for this process and all it starts (needs no_new_privs set first)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    zero = ctypes.c_ulong(0)
    result = _libc.prctl(
        PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), zero, zero
    )
    _check(result, "prctl(PR_SET_SECCOMP)")


# ---- the supervisor ----------------------------------------------------------------------------


def _mount_points() -> list[tuple[str, int]]:
    """Each mount point of this mount namespace with the flags to keep when remounting it."""
    points = []
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            point = fields[4].decode("unicode_escape")  # octal escapes such as \040
            flags = 0
            for option in fields[5].decode().split(","):
                flags |= _MOUNT_OPTION_FLAGS.get(option, 0)
            points.append((point, flags))
    return points


def _isolate(uid: int, disk_bytes: int, python_paths: list[str]) -> None:
    """New namespaces for this process (PID: for its children); a read-only view of every mount
    but a private tmpfs on /tmp; `python_paths` reachable. Changes nothing outside the new mount
    namespace."""
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID
    _check(
        _libc.unshare(flags),
        "unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID) (the sandbox needs "
        "root, or CAP_SYS_ADMIN, in a kernel that allows new namespaces)",
    )
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for point, keep in _mount_points():
        if point == "/proc" or point.startswith("/proc/"):
            continue  # the init covers /proc with a proc of its own PID namespace
        try:
            _mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | keep)
        except SetupError as exc:
            # A mount hidden under a later one cannot be remounted by its path, nor reached:
            # fine, as long as what the path leads to now is read-only.
            if exc.errno not in (errno.ENOENT, errno.EINVAL) or not _read_only(point):
                raise
    _mount(
        "sandbox",
        WORKDIR,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={disk_bytes},nr_inodes=4096,mode=0700,uid={uid},gid={uid}",
    )
    _expose(python_paths)


def _read_only(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except FileNotFoundError:
        return True  # nothing there to write to


def _first_closed_directory(path: str) -> str | None:
    """The first directory on the way to `path` that other users may not enter, if any."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        if not os.stat(current).st_mode & 0o001:
            return current
        current = os.path.join(current, part)
    return None if os.stat(current).st_mode & 0o001 else current


def _expose(paths: list[str]) -> None:
    """Make each of `paths` reachable by the sandbox's uid where a directory above it is closed
    to other users (Python installed under /root, for instance): that directory is covered with
    an empty read-only tmpfs holding only the way down to the paths, bind-mounted back in place.
    What else the closed directory holds stays out of the sandbox's sight."""
    closed: dict[str, str] = {}
    for path in paths:
        if not os.path.isdir(path):
            continue
        directory = _first_closed_directory(path)
        if directory == path:
            raise SetupError(
                f"{path} is needed inside the sandbox but other users may not enter it; "
                "give it mode o+rx"
            )
        if directory is not None:
            closed[path] = directory
    held = []
    for index, path in enumerate(sorted(closed)):
        hold = os.path.join(WORKDIR, f".expose-{index}")
        os.mkdir(hold, 0o700)
        _mount(path, hold, None, MS_BIND | MS_REC)
        held.append((hold, path))
    for directory in sorted(set(closed.values())):
        _mount("sandbox-cover", directory, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    for hold, path in held:
        os.makedirs(path, 0o755, exist_ok=True)
        _mount(hold, path, None, MS_MOVE)
        _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.rmdir(hold)
    for directory in sorted(set(closed.values())):
        _mount(None, directory, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _decide(
    request: dict[str, Any],
    status: int,
    cpu_used: float,
    killed_for: str | None,
    message: bytes,
    output_size: int,
) -> dict[str, Any]:
    limits = request["limits"]
    if killed_for == "wall":
        return _failure("timeout", f"wall-clock limit of {limits['wall_seconds']:g} s exceeded")
    if killed_for == "result":
        return _output_failure(limits, "the result")
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    exit_status = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    if exit_status == EXIT_CPU or (killed and cpu_used >= limits["cpu_seconds"]):
        return _failure("timeout", f"CPU time limit of {limits['cpu_seconds']:g} s exceeded")
    if output_size >= limits["output_bytes"]:
        return _output_failure(limits, "stdout/stderr or a file")
    if exit_status == EXIT_MEMORY:
        return _memory_failure(limits)
    if message:
        try:
            answer = json.loads(message)
        except (ValueError, RecursionError):
            answer = None
        if _well_formed(answer):
            return answer
        return _failure(
            "execution_error",
            "the function's process wrote something other than its result on the result pipe",
        )
    if killed:
        return _failure(
            "memory_limit", "the function's process was killed by SIGKILL (out of memory?)"
        )
    return _failure(
        "execution_error", f"the function's process {_status_text(status)} without a result"
    )


_INIT_REASONS = {
    "execution_error",
    "result_not_json",
    "output_limit",
    "memory_limit",
    "sandbox_error",
}


def _well_formed(answer: Any) -> bool:
    """Whether the init's message (which the function could have forged) has a result's shape."""
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        return False
    if answer["ok"]:
        return set(answer) == {"ok", "value"}
    return (
        set(answer) == {"ok", "reason", "detail"}
        and answer["reason"] in _INIT_REASONS
        and isinstance(answer["detail"], str)
    )


def _failure(reason: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "reason": reason, "detail": detail}


def _output_failure(limits: dict[str, Any], what: str) -> dict[str, Any]:
    return _failure(
        "output_limit", f"{what} exceeded the output limit of {limits['output_bytes']:,} bytes"
    )


def _memory_failure(limits: dict[str, Any]) -> dict[str, Any]:
    return _failure(
        "memory_limit", f"MemoryError: memory limit of {limits['memory_bytes']:,} bytes reached"
    )


def _watch(init: int, result_pipe: int, deadline: float, cap: int) -> tuple[bytes, str | None]:
    """Read the init's result until it exits; kill it at the deadline or when it says too much.
    Gives the bytes read and why the init was killed (None when it was not)."""
    pidfd = os.pidfd_open(init)
    message = bytearray()
    watching = [result_pipe, pidfd]
    killed_for: str | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed_for = "wall"
                break
            ready, _, _ = select.select(watching, [], [], remaining)
            if result_pipe in ready:
                chunk = os.read(result_pipe, 65536)
                if not chunk:
                    watching.remove(result_pipe)
                message += chunk
                if len(message) > cap:
                    killed_for = "result"
                    break
            if pidfd in ready:
                break
        if killed_for:
            os.kill(init, signal.SIGKILL)
        else:
            # The init has exited; its namespace is gone, so every writer is closed.
            os.set_blocking(result_pipe, False)
            while len(message) <= cap:
                try:
                    chunk = os.read(result_pipe, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                message += chunk
            if len(message) > cap:
                killed_for = "result"
    finally:
        os.close(pidfd)
    return bytes(message), killed_for


def supervise(request: dict[str, Any]) -> dict[str, Any]:
    """Run the request's call in a fresh sandbox and say how it went."""
    limits = request["limits"]
    uid = SANDBOX_UID_BASE + os.getpid()
    try:
        _isolate(uid, limits["disk_bytes"], [sys.base_prefix, *request["site_paths"]])
        program = seccomp_program(os.uname().machine)
    except (SetupError, OSError) as exc:
        return _failure("sandbox_error", str(exc))
    output = os.memfd_create("sandbox-output")
    result_read, result_write = os.pipe()
    start = time.monotonic()
    init = os.fork()
    if init == 0:
        os.close(result_read)
        run_init(request, uid, program, output, result_write)
    os.close(result_write)
    # The result is JSON of a value no larger than output_bytes, with room for escapes.
    cap = 2 * limits["output_bytes"] + 65536
    message, killed_for = _watch(init, result_read, start + limits["wall_seconds"], cap)
    _, status, usage = os.wait4(init, 0)
    output_size = os.fstat(output).st_size
    cpu_used = usage.ru_utime + usage.ru_stime
    return _decide(request, status, cpu_used, killed_for, message, output_size)


# ---- the init: PID 1 of the new namespace, runs the function -----------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _exception_line(exc: BaseException) -> str:
    """The last line of the exception's traceback, as `traceback` would print it."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    try:
        text = str(exc)
    except Exception:  # a hostile __str__
        text = "<exception str() failed>"
    line = f"{name}: {text}" if text else name
    return line if len(line) <= DETAIL_LIMIT else line[: DETAIL_LIMIT - 1] + "…"


def _set_limits(limits: dict[str, Any]) -> None:
    cpu = max(1, -int(-limits["cpu_seconds"] // 1))  # whole seconds, rounded up
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["output_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))


def _enter(request: dict[str, Any], uid: int, program: bytes, output: int, result: int) -> None:
    """Everything between the fork and the function's first line, in this order: /proc, file
    descriptors, limits, uid, no_new_privs, seccomp, then the working directory and modules."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    highest = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(3, result)
    os.closerange(result + 1, highest)
    _set_limits(request["limits"])
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # After the uid change, which clears it: the init dies with the supervisor.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "prctl(PR_SET_PDEATHSIG)")
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")
    install_seccomp(program)
    os.chdir(WORKDIR)
    os.umask(0o077)
    os.environ.clear()
    os.environ.update(PATH=SANDBOX_PATH, LANG="C.UTF-8", HOME=WORKDIR, TMPDIR=WORKDIR)
    for name, source in request["modules"].items():
        with open(os.path.join(WORKDIR, f"{name}.py"), "w", encoding="utf-8") as module_file:
            module_file.write(source)
    sys.path[:0] = [WORKDIR]
    sys.path.extend(request["site_paths"])
    signal.signal(signal.SIGXCPU, lambda *_: os._exit(EXIT_CPU))


def _load(name: str) -> types.ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(WORKDIR, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _call(request: dict[str, Any]) -> dict[str, Any]:
    name, function = request["module"], request["function"]
    try:
        module = _load(name)
    except MemoryError:
        raise
    except BaseException as exc:
        return _failure("execution_error", f"{_exception_line(exc)} (while importing {name})")
    target: Callable[..., Any] | None = getattr(module, function, None)
    if not callable(target):
        return _failure("execution_error", f"module {name!r} has no function {function!r}")
    try:
        value = target(**request["arguments"])
        if isinstance(value, types.CoroutineType):
            import asyncio

            value = asyncio.run(value)
    except MemoryError:
        raise
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            return _output_failure(request["limits"], "stdout/stderr or a file")
        return _failure("execution_error", _exception_line(exc))
    except BaseException as exc:
        return _failure("execution_error", _exception_line(exc))
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except MemoryError:
        raise
    except (TypeError, ValueError, RecursionError) as exc:
        return _failure("result_not_json", f"the result is not JSON: {_exception_line(exc)}")
    if len(encoded.encode()) > request["limits"]["output_bytes"]:
        return _output_failure(request["limits"], "the result")
    return {"ok": True, "encoded": encoded}


def run_init(
    request: dict[str, Any], uid: int, program: bytes, output: int, result: int
) -> NoReturn:
    """The init's whole life: set up, call, report on the result pipe, exit."""
    out_of_memory = (json.dumps(_memory_failure(request["limits"])) + "\n").encode()
    try:
        _enter(request, uid, program, output, result)
    except BaseException as exc:  # anything failing here is the sandbox's failure
        detail = exc.args[0] if isinstance(exc, SetupError) else _exception_line(exc)
        _write_all(result, json.dumps(_failure("sandbox_error", detail)).encode())
        os._exit(EXIT_SETUP)
    me = os.getpid()
    try:
        answer = _call(request)
        if os.getpid() != me:
            os._exit(0)  # a process the function forked: only the init reports
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # over the output limit: the supervisor sees the size
                continue
        encoded = answer.pop("encoded", None)
        if encoded is None:
            payload = json.dumps(answer, ensure_ascii=False).encode()
        else:  # the value, already encoded once to check it
            payload = b'{"ok": true, "value": ' + encoded.encode() + b"}"
        _write_all(result, payload)
    except MemoryError:
        if os.getpid() != me:
            os._exit(0)
        try:
            _write_all(result, out_of_memory)
        except BaseException:
            os._exit(EXIT_MEMORY)
    os._exit(0)


def main() -> None:
    """Read the request on stdin, answer on stdout."""
    os.umask(0o022)
    request = json.loads(sys.stdin.buffer.read())
    answer = supervise(request)
    sys.stdout.buffer.write(json.dumps(answer, ensure_ascii=False).encode())
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
