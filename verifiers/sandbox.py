"""Calling the real functions of Python-module catalogs, each call in a sandboxed process.

A call runs `verifiers/sandbox_child.py` in a fresh interpreter (``python -I -S -B``) as root;
that process isolates itself and forks the process that imports the module and calls the
function. What the sandbox guarantees, and what it does not, is written down in docs/sandbox.md:

- new PID, network, mount and IPC namespaces: the function sees only its own processes, has only
  a loopback interface that is down, and ends with everything it started;
- every mount read-only, a private size-limited tmpfs on /tmp as working directory and HOME;
- a uid (and gid) of its own with no supplementary groups, no_new_privs, and a seccomp filter
  that refuses AF_UNIX sockets (other than connected pairs), io_uring, new namespaces and keyrings;
- CPU time, address space, file size, process count limits, and a wall clock kept by the
  supervising process;
- an environment of PATH, LANG, HOME and TMPDIR only.

Arguments travel as JSON and are passed as keyword arguments; the return value must be JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unified.errors import ActionForgeError
from verifiers.sandbox_child import SANDBOX_UID_BASE
from verifiers.verdict import Reason

__all__ = [
    "SANDBOX_UID_BASE",
    "Sandbox",
    "SandboxInputError",
    "SandboxLimits",
    "SandboxResult",
    "run_call",
]

MiB = 1024 * 1024
CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
STARTUP_GRACE_SECONDS = 10.0
"""How long past the wall-clock limit the caller waits for the supervising process itself."""

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
_CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
# Installed packages stay importable by the function; .pth files are not run (-S).
_SITE_PATHS = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})


class SandboxInputError(ActionForgeError, ValueError):
    """A sandbox was given a module name or callable reference it cannot use."""


class SandboxLimits(BaseModel):
    """What one sandboxed call may use. Every limit applies to each call on its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_seconds: float = Field(2.0, gt=0, description="CPU time (RLIMIT_CPU, whole seconds up)")
    wall_seconds: float = Field(5.0, gt=0, description="wall clock, after which all is killed")
    memory_bytes: int = Field(
        512 * MiB, ge=64 * MiB, description="address space of each process (RLIMIT_AS)"
    )
    output_bytes: int = Field(
        MiB, ge=1024, description="stdout+stderr, each file written, and the JSON result"
    )
    max_processes: int = Field(
        32, ge=1, description="processes and threads at once (RLIMIT_NPROC of the call's uid)"
    )
    disk_bytes: int = Field(16 * MiB, ge=MiB, description="size of the private tmpfs on /tmp")


DEFAULT_LIMITS = SandboxLimits()


class SandboxResult(BaseModel):
    """How a call went: its JSON return value, or a `verifiers.verdict.Reason` and a detail."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    value: Any = None
    reason: str | None = None
    detail: str | None = None

    @classmethod
    def failure(cls, reason: Reason, detail: str) -> SandboxResult:
        return cls(ok=False, reason=str(reason), detail=detail)


def _check_module_name(name: str) -> None:
    if not _MODULE_NAME.match(name):
        raise SandboxInputError(
            f"module name {name!r} cannot be used: a module name starts with a letter or '_' "
            "and has up to 100 letters, digits, '_', '.' or '-'; rename the module file"
        )


class Sandbox:
    """Calls the functions of one catalog's Python modules, each call in a fresh sandbox.

    `modules` maps module names (the file stems of ``Tool.source.callable``) to their source;
    every module is present in each call's working directory, so they may import each other.
    """

    def __init__(self, modules: dict[str, str], limits: SandboxLimits = DEFAULT_LIMITS) -> None:
        for name in modules:
            _check_module_name(name)
        self.modules = dict(modules)
        self.limits = limits

    def call(self, callable_ref: str, arguments: dict[str, Any]) -> SandboxResult:
        """Call ``"module:function"`` with `arguments` as keyword arguments."""
        module, sep, function = callable_ref.partition(":")
        if not sep or not function.isidentifier():
            raise SandboxInputError(
                f"callable reference {callable_ref!r} is not 'module:function'; "
                "give the module name and the function name separated by ':'"
            )
        if module not in self.modules:
            known = ", ".join(sorted(self.modules)) or "none"
            raise SandboxInputError(
                f"callable reference {callable_ref!r} names module {module!r}, which this "
                f"sandbox was not given (it has: {known}); add the module's source"
            )
        if not isinstance(arguments, dict):
            raise SandboxInputError(
                f"arguments must be a JSON object (a dict), not {type(arguments).__name__}"
            )
        try:
            request = json.dumps(
                {
                    "module": module,
                    "function": function,
                    "limits": self.limits.model_dump(),
                    "site_paths": _SITE_PATHS,
                    "modules": self.modules,
                    "arguments": arguments,
                },
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise SandboxInputError(f"arguments are not JSON: {exc}") from None
        return _run_child(request.encode(), self.limits)


def run_call(
    module_source: str,
    module_name: str,
    function: str,
    arguments: dict[str, Any],
    limits: SandboxLimits = DEFAULT_LIMITS,
) -> SandboxResult:
    """Call `function` of the module `module_name` (given as source) with `arguments`, sandboxed."""
    return Sandbox({module_name: module_source}, limits).call(
        f"{module_name}:{function}", arguments
    )


def _run_child(request: bytes, limits: SandboxLimits) -> SandboxResult:
    if not sys.platform.startswith("linux"):
        return SandboxResult.failure(
            Reason.sandbox_error, f"the sandbox needs Linux namespaces; this is {sys.platform}"
        )
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(CHILD_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_CHILD_ENV,
        cwd="/",
        start_new_session=True,  # out of the caller's process group and terminal signals
    )
    try:
        # The supervisor's answer is bounded (it reads at most about 2 x output_bytes of
        # result), so reading it whole is safe; what the function prints never reaches us.
        out, err = process.communicate(request, timeout=limits.wall_seconds + STARTUP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        return SandboxResult.failure(
            Reason.sandbox_error,
            f"the sandbox process did not answer within {limits.wall_seconds:g} s "
            f"+ {STARTUP_GRACE_SECONDS:g} s and was killed",
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    try:
        return SandboxResult.model_validate_json(out)
    except ValueError:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return SandboxResult.failure(
            Reason.sandbox_error,
            f"the sandbox process failed (exit status {process.returncode}): {last[0]}",
        )
