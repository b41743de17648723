"""compose.yaml and the Dockerfile, checked without a Docker engine: every command they run
exists in the CLI, every AF_* variable is a real setting, and every file they copy exists."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.core import TyperGroup

from service.cli.app import app
from service.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()

FLEET = {"api", "worker-generate", "worker-verify", "trainer", "redis", "postgres", "vllm"}
MUST_HAVE_HEALTHCHECKS = {"api", "redis", "postgres", "vllm"}
QUEUE_OF_WORKER = {"worker-generate": "generate", "worker-verify": "verify", "trainer": "train"}
# ${NAME}, ${NAME:-default} and ${NAME-default}, as Compose interpolates them.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def with_defaults(value: object) -> str:
    """A Compose value with every variable replaced by its default (empty when it has none)."""
    return INTERPOLATION.sub(lambda match: match.group("default") or "", str(value))


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(entry.split("=", 1) for entry in environment)
    return {name: with_defaults(value) for name, value in environment.items()}


def actionforge_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every `actionforge ...` command in compose.yaml and the Dockerfile."""
    found = [
        (f"compose.yaml service {name!r}", command_of(service))
        for name, service in SERVICES.items()
        if command_of(service)[:1] == ["actionforge"]
    ]
    for instruction in ("CMD", "ENTRYPOINT"):
        for line in re.findall(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE, re.MULTILINE):
            argv = json.loads(line)
            if argv[:1] == ["actionforge"]:
                found.append((f"Dockerfile {instruction}", argv))
    return found


class NotInTheCli(Exception):
    """A command line that the `actionforge` CLI would refuse."""


def check_cli_arguments(argv: list[str]) -> None:
    """Parse `argv` with the real CLI without running it; raise NotInTheCli if it does not fit."""
    command = typer.main.get_command(app)
    args = argv[1:]
    while isinstance(command, TyperGroup) and args and not args[0].startswith("-"):
        context = typer.Context(command)
        name, args = args[0], args[1:]
        subcommand = command.get_command(context, name)
        if subcommand is None:
            known = ", ".join(sorted(command.list_commands(context)))
            raise NotInTheCli(f"no command {name!r} (known: {known})")
        command = subcommand
    try:
        command.make_context(argv[0], list(args))
    except typer.TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise NotInTheCli(message) from exc


def copied_sources(dockerfile: str) -> list[str]:
    """Build-context paths that COPY/ADD instructions read (not those from another stage)."""
    sources = []
    for line in re.findall(r"^(?:COPY|ADD)\s+(.+)$", dockerfile, re.MULTILINE):
        words = shlex.split(line)
        if any(word.startswith("--from=") for word in words):
            continue
        sources.extend(word for word in words[:-1] if not word.startswith("--"))
    return sources


def test_the_fleet_is_all_there() -> None:
    assert set(SERVICES) >= FLEET
    assert SERVICES["flower"]["profiles"] == ["flower"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_an_image_or_a_build(name: str) -> None:
    assert "image" in SERVICES[name] or "build" in SERVICES[name]


def test_the_cli_check_catches_what_does_not_exist() -> None:
    with pytest.raises(NotInTheCli, match="no command 'frobnicate'"):
        check_cli_arguments(["actionforge", "frobnicate"])
    with pytest.raises(NotInTheCli, match="No such option: --no-such-option"):
        check_cli_arguments(["actionforge", "formats", "--no-such-option"])
    check_cli_arguments(["actionforge", "catalog", "show", str(ROOT / "examples/travel_api.yaml")])


def test_the_commands_compose_and_the_dockerfile_run_exist_in_the_cli() -> None:
    commands = actionforge_commands()
    assert {where for where, _ in commands} >= {
        f"compose.yaml service {name!r}" for name in ("api", *QUEUE_OF_WORKER)
    } | {"Dockerfile CMD"}
    for where, argv in commands:
        try:
            check_cli_arguments(argv)
        except NotInTheCli as exc:
            pytest.fail(f"{where} runs `{shlex.join(argv)}`: {exc}")


def test_the_api_listens_on_all_interfaces_and_each_worker_on_its_queue() -> None:
    api = command_of(SERVICES["api"])
    assert api[:2] == ["actionforge", "serve"]
    assert api[api.index("--host") + 1] == "0.0.0.0"
    for name, queue in QUEUE_OF_WORKER.items():
        assert command_of(SERVICES[name]) == ["actionforge", "worker", "-Q", queue]


def test_every_queue_a_worker_is_given_is_a_queue_of_the_celery_app() -> None:
    from service.queue.app import QUEUES

    workers = {
        name: command_of(service)
        for name, service in SERVICES.items()
        if command_of(service)[:2] == ["actionforge", "worker"]
    }
    assert set(workers) == set(QUEUE_OF_WORKER)
    for name, command in workers.items():
        queues = command[command.index("-Q") + 1].split(",")
        assert set(queues) <= set(QUEUES), f"{name} works unknown queues {queues}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_af_variable_is_a_real_setting(name: str) -> None:
    for variable in environment_of(SERVICES[name]):
        if variable.startswith(ENV_PREFIX):
            field = variable.removeprefix(ENV_PREFIX).lower()
            assert field in Settings.model_fields, f"{name}: {variable} is not a setting"


def test_the_dockerfile_sets_only_real_settings() -> None:
    for variable in re.findall(rf"\b({ENV_PREFIX}\w+)=", DOCKERFILE):
        assert variable.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, variable


@pytest.mark.parametrize("name", ["api", *QUEUE_OF_WORKER])
def test_the_service_settings_are_valid_with_their_defaults(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    environment = environment_of(SERVICES[name])
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    settings = Settings()

    assert settings.resolved_database_url().startswith("postgresql://")
    assert settings.resolved_database_url().endswith("@postgres:5432/actionforge")
    assert settings.resolved_broker_url() == "redis://redis:6379/0"
    assert str(settings.data_dir) == "/data"


@pytest.mark.parametrize("name", sorted(MUST_HAVE_HEALTHCHECKS))
def test_healthchecks_are_present(name: str) -> None:
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert len(test) > 1


def test_the_api_and_vllm_healthchecks_ask_their_health_endpoints() -> None:
    assert "http://127.0.0.1:8000/v1/health" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health" in " ".join(SERVICES["vllm"]["healthcheck"]["test"])


def test_the_api_healthcheck_asks_a_route_the_api_has(tmp_path: Path) -> None:
    from service.api.app import create_app

    paths = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    assert "get" in paths["/v1/health"]


def test_dependencies_wait_for_healthy_services_that_exist() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}, name
            assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"
    for name in ("api", *QUEUE_OF_WORKER):
        assert set(SERVICES[name]["depends_on"]) == {"postgres", "redis"}


def test_every_named_volume_is_declared() -> None:
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    assert "data:/data" in SERVICES["api"]["volumes"]
    assert any(v.startswith("postgres:") for v in SERVICES["postgres"]["volumes"])


def test_vllm_serves_a_model_from_the_environment_on_a_gpu() -> None:
    vllm = SERVICES["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    command = command_of(vllm)
    assert command[command.index("--model") + 1].startswith("${VLLM_MODEL")
    structured = json.loads(command[command.index("--structured-outputs-config") + 1])
    assert structured == {"backend": "xgrammar", "disable_any_whitespace": True}
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)


def test_the_dockerfile_builds_from_python_311_slim_and_runs_as_a_user() -> None:
    assert re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)[-1] == "python:3.11-slim"
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users, "the image runs as root"
    assert users[-1] not in {"root", "0"}


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = copied_sources(DOCKERFILE)
    assert {"pyproject.toml", "README.md"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        top = source.rstrip("/").split("/")[0]
        assert not any(fnmatch.fnmatch(top, pattern) for pattern in ignored), (
            f"the Dockerfile copies {source}, which .dockerignore leaves out"
        )


def test_the_dockerfile_copies_every_package_the_distribution_includes() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in included}
    copied = {source.rstrip("/") for source in copied_sources(DOCKERFILE)}
    assert sorted(packages - copied) == []
