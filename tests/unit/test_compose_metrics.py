"""compose.yaml's `metrics` profile fits together without a Docker engine: Prometheus scrapes the
API's real /metrics route and the port every worker serves its metrics on, with the bearer token
file its command writes; Grafana gets the data source and the dashboard from files that exist,
mounted where its provisioning looks."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from test_compose import COMPOSE, SERVICES, command_of, environment_of

from service.api.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
JOBS = {job["job_name"]: job for job in PROMETHEUS_CONFIG["scrape_configs"]}


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = ROOT / source
    return found


def in_container(service: dict[str, Any], path: str) -> Path:
    """The host file a path inside the service's container is, through its bind mounts."""
    for target, source in mounts(service).items():
        if PurePosixPath(path).is_relative_to(target):
            return source / PurePosixPath(path).relative_to(target)
    raise AssertionError(f"{path} is not mounted from the project")


def test_prometheus_and_grafana_run_only_under_the_metrics_profile() -> None:
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["metrics"]
        assert ":${" in SERVICES[name]["image"], f"{name}'s image has no version"
        for source in mounts(SERVICES[name]).values():
            assert source.exists(), f"{name} mounts {source}, which does not exist"
    assert {"prometheus", "grafana"} <= set(COMPOSE["volumes"])


def test_prometheus_scrapes_the_apis_metrics_route_with_the_token_its_command_writes(
    tmp_path: Path,
) -> None:
    api = JOBS["actionforge-api"]
    [target] = api["static_configs"][0]["targets"]
    host, port = target.split(":")
    command = command_of(SERVICES["api"])
    assert (host, port) == ("api", command[command.index("--port") + 1])
    paths = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    assert "get" in paths[api["metrics_path"]]
    prometheus = SERVICES["prometheus"]
    assert in_container(prometheus, "/etc/prometheus/prometheus.yml").exists()
    token_file = api["authorization"]["credentials_file"]
    assert f"> {token_file} &&" in " ".join(command_of(prometheus))
    assert "METRICS_API_KEY" in environment_of(prometheus)


def test_prometheus_finds_every_worker_replica_on_the_port_it_serves_metrics_on() -> None:
    [discovery] = JOBS["actionforge-workers"]["dns_sd_configs"]
    workers = {
        name
        for name, service in SERVICES.items()
        if command_of(service)[:2] == ["actionforge", "worker"]
    }
    assert set(discovery["names"]) == workers
    for name in workers:
        environment = environment_of(SERVICES[name])
        assert environment["AF_METRICS_PORT"] == str(discovery["port"]), name
        assert environment["AF_METRICS_HOST"] == "0.0.0.0", name


def test_grafana_is_provisioned_with_the_data_source_and_the_dashboard() -> None:
    grafana = SERVICES["grafana"]
    provisioning = in_container(grafana, "/etc/grafana/provisioning")
    [source] = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090" in SERVICES["prometheus"]["ports"][0].split(":")[-1]
    [provider] = yaml.safe_load((provisioning / "dashboards/actionforge.yaml").read_text())[
        "providers"
    ]
    dashboards = in_container(grafana, provider["options"]["path"])
    assert (dashboards / "actionforge.json").exists()
    home = environment_of(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert in_container(grafana, home) == dashboards / "actionforge.json"
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
