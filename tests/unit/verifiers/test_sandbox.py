"""The sandbox runs real functions in real processes: these tests call hostile functions and check
that each is contained, with the right reason, while the test process carries on."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from unified.catalogs import load_catalog
from verifiers.sandbox import (
    SANDBOX_UID_BASE,
    Sandbox,
    SandboxInputError,
    SandboxLimits,
    SandboxResult,
    run_call,
)

HOSTILE = Path(__file__).parents[2] / "data" / "python" / "hostile_functions.py"
SOURCE = HOSTILE.read_text(encoding="utf-8")
FAST = SandboxLimits(cpu_seconds=1, wall_seconds=2)


def call(function: str, limits: SandboxLimits = FAST, **arguments: object) -> SandboxResult:
    return run_call(SOURCE, "hostile_functions", function, arguments, limits)


def sandbox_processes() -> list[int]:
    """PIDs of every process that runs as a sandbox uid, on the whole machine."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue  # it ended meanwhile
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if int(uid_line.split()[1]) >= SANDBOX_UID_BASE:
            found.append(int(entry))
    return found


@pytest.fixture
def no_strays() -> Iterator[None]:
    """Fails the test when a sandboxed process is left behind by it."""
    assert sandbox_processes() == []
    yield
    assert sandbox_processes() == []


# ---- the catalog and ordinary calls ------------------------------------------------------------


def test_the_hostile_module_is_also_a_catalog() -> None:
    catalog = load_catalog(HOSTILE)
    tools = {tool.name: tool for tool in catalog.tools}
    assert {"add_numbers", "fork_storm", "kill_others", "a_set"} <= set(tools)
    assert tools["add_numbers"].source is not None
    assert tools["add_numbers"].source.callable == "hostile_functions:add_numbers"
    assert tools["add_numbers"].parameters["required"] == ["a", "b"]


def test_a_function_returns_its_value_from_an_unprivileged_pid_1_in_tmp() -> None:
    result = call("add_numbers", a=2, b=3)
    assert result.ok, result
    assert result.value["sum"] == 5
    assert result.value["uid"] >= SANDBOX_UID_BASE
    assert result.value["pid"] == 1
    assert result.value["cwd"] == "/tmp"
    assert result.reason is None


def test_modules_of_one_sandbox_import_each_other() -> None:
    sandbox = Sandbox(
        {
            "helpers": "def double(x):\n    return 2 * x\n",
            "tools": "import helpers\n\ndef quadruple(x):\n    return helpers.double(2 * x)\n",
        },
        FAST,
    )
    assert sandbox.call("tools:quadruple", {"x": 3}) == SandboxResult(ok=True, value=12)


def test_async_functions_are_awaited() -> None:
    source = "import asyncio\n\nasync def later(x):\n    await asyncio.sleep(0)\n    return x\n"
    assert run_call(source, "aio", "later", {"x": [1]}, FAST).value == [1]


def test_bad_arguments_give_execution_error_with_the_last_traceback_line() -> None:
    missing = call("add_numbers", a=1)
    assert (missing.ok, missing.reason) == (False, "execution_error")
    assert missing.detail == "TypeError: add_numbers() missing 1 required positional argument: 'b'"
    zero = call("divide", a=1, b=0)
    assert (zero.reason, zero.detail) == ("execution_error", "ZeroDivisionError: division by zero")


def test_a_function_that_does_not_exist() -> None:
    result = call("no_such_function")
    assert result.reason == "execution_error"
    assert result.detail == "module 'hostile_functions' has no function 'no_such_function'"


def test_a_module_that_fails_to_import() -> None:
    result = run_call("raise RuntimeError('top level')\n", "broken", "f", {}, FAST)
    assert result.reason == "execution_error"
    assert result.detail == "RuntimeError: top level (while importing broken)"


def test_a_result_that_is_not_json() -> None:
    result = call("a_set")
    assert result.reason == "result_not_json"
    assert "set is not JSON serializable" in (result.detail or "")


# ---- time --------------------------------------------------------------------------------------


def test_an_endless_loop_is_stopped_by_the_cpu_limit(no_strays: None) -> None:
    result = call("spin_forever", SandboxLimits(cpu_seconds=1, wall_seconds=30))
    assert result.reason == "timeout"
    assert result.detail == "CPU time limit of 1 s exceeded"


def test_a_sleeping_function_is_stopped_by_the_wall_clock(no_strays: None) -> None:
    result = call("sleep_forever", SandboxLimits(cpu_seconds=1, wall_seconds=1))
    assert result.reason == "timeout"
    assert result.detail == "wall-clock limit of 1 s exceeded"


# ---- processes ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_fork_storm_is_contained_and_leaves_no_process(no_strays: None) -> None:
    result = call("fork_storm", SandboxLimits())
    assert result.reason in ("timeout", "execution_error")
    assert sandbox_processes() == []
    assert call("add_numbers", a=1, b=1).value["sum"] == 2  # the machine still runs sandboxes


def test_a_background_process_does_not_outlive_the_call(no_strays: None) -> None:
    result = call("start_background_process", seconds=300)
    assert result.ok and result.value > 1  # it was started, in the sandbox's PID namespace
    assert sandbox_processes() == []


def test_the_function_cannot_kill_the_caller_nor_see_other_processes() -> None:
    me = os.getpid()
    result = call("kill_others", pid=me)
    assert result.ok, result
    # The caller's PID does not exist in the sandbox's PID namespace (or belongs to a process
    # of the sandbox); nothing outside it can be signalled.
    assert result.value["pid"] in ("ProcessLookupError", "PermissionError", "sent")
    os.kill(me, 0)  # still here
    assert call("list_processes").value == [1]


def test_no_new_user_namespace() -> None:
    result = call("new_user_namespace")
    assert result.reason == "execution_error"
    assert result.detail == "PermissionError: [Errno 1] Operation not permitted"


# ---- memory ------------------------------------------------------------------------------------


def test_a_10_gb_allocation_gives_memory_limit() -> None:
    result = call("allocate", gigabytes=10)
    assert result.reason == "memory_limit"


def test_growing_memory_gives_memory_limit() -> None:
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=10, memory_bytes=128 * 1024 * 1024)
    result = call("grow_memory", limits, megabytes_per_step=8)
    assert result.reason == "memory_limit"


# ---- network -----------------------------------------------------------------------------------


def test_no_tcp_connection_to_a_local_service(redis_url: str) -> None:
    with socket.create_connection(("127.0.0.1", 6379), timeout=5):
        pass  # Redis answers the caller
    result = call("connect_tcp", host="127.0.0.1", port=6379)
    assert result.reason == "execution_error"
    assert result.detail == "OSError: [Errno 101] Network is unreachable"


@pytest.fixture
def unix_service() -> Iterator[str]:
    """A Unix socket that anyone may connect to, outside /tmp (which the sandbox replaces)."""
    directory = Path(f"/var/tmp/af-sandbox-test-{secrets.token_hex(4)}")
    directory.mkdir(mode=0o755)
    path = str(directory / "service.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen()
        yield path
    finally:
        server.close()
        shutil.rmtree(directory)


def test_no_connection_to_a_unix_socket_anyone_may_use(unix_service: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(unix_service)  # the service answers the caller
    result = call("connect_unix", path=unix_service)
    assert result.reason == "execution_error"
    assert result.detail == "PermissionError: [Errno 1] Operation not permitted"


# ---- files and environment ---------------------------------------------------------------------


def test_writes_outside_the_private_tmp_do_not_reach_the_machine() -> None:
    name = f"af-sandbox-escape-{secrets.token_hex(6)}"
    in_tmp = call("write_file", path=f"/tmp/{name}")
    assert in_tmp.ok and in_tmp.value == f"/tmp/{name}"  # the sandbox's own /tmp ...
    assert not Path(f"/tmp/{name}").exists()  # ... is not the machine's
    assert call("read_file", path=f"/tmp/{name}").reason == "execution_error"  # nor the next call's
    for place in ("/var/tmp", "/dev/shm", str(Path(__file__).parent)):
        result = call("write_file", path=f"{place}/{name}")
        assert result.reason == "execution_error"
        # A checkout under /tmp is hidden by the private /tmp: the folder is not even there.
        hidden = place.startswith("/tmp/")
        refusal = "No such file or directory" if hidden else "Read-only file system"
        assert refusal in (result.detail or "")
        assert not Path(f"{place}/{name}").exists()


def test_secrets_in_the_environment_are_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AF_TEST_SECRET_TOKEN", "s3cr3t")
    result = call("environment")
    assert result.ok
    assert "AF_TEST_SECRET_TOKEN" not in result.value
    assert "s3cr3t" not in json.dumps(result.value)
    assert set(result.value) == {"PATH", "LANG", "HOME", "TMPDIR"}
    assert result.value["HOME"] == "/tmp"


# ---- output ------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["print_a_lot", "huge_result"])
def test_50_mb_of_output_gives_output_limit_and_the_caller_reads_little(function: str) -> None:
    tracemalloc.start()
    try:
        result = call(function, megabytes=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.reason == "output_limit"
    assert peak < 4 * 1024 * 1024


# ---- the sandbox itself ------------------------------------------------------------------------


def test_parallel_calls_run_as_different_uids() -> None:
    results: list[SandboxResult] = []

    def one() -> None:
        results.append(call("add_numbers", a=1, b=2))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.ok for r in results)
    assert len({r.value["uid"] for r in results}) == 3


def test_without_the_right_to_isolate_nothing_runs() -> None:
    script = (
        "import sys; from verifiers.sandbox import run_call; "
        "print(run_call('def f():\\n    return 1\\n', 'm', 'f', {}).model_dump_json())"
    )
    # Root without CAP_SYS_ADMIN may not create namespaces: the call must not run unisolated.
    completed = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[3],
    )
    result = SandboxResult.model_validate_json(completed.stdout)
    assert result.reason == "sandbox_error"
    assert result.detail is not None and result.detail.startswith("unshare(")
    assert "Operation not permitted" in result.detail


def test_bad_configuration_is_refused_before_running() -> None:
    with pytest.raises(SandboxInputError, match=r"module name '\.\./evil'"):
        Sandbox({"../evil": ""})
    sandbox = Sandbox({"tools": "def f():\n    return 1\n"})
    with pytest.raises(SandboxInputError, match="not 'module:function'"):
        sandbox.call("tools.f", {})
    with pytest.raises(SandboxInputError, match="names module 'other'"):
        sandbox.call("other:f", {})
    with pytest.raises(SandboxInputError, match="arguments are not JSON"):
        sandbox.call("tools:f", {"x": {1, 2}})
    with pytest.raises(ValidationError):
        SandboxLimits(wall_seconds=0)
