"""Who may call what: health answers anyone; with AF_API_KEYS set, every other /v1 route
needs a known X-API-Key; the OpenAPI docs describe it all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from api_support import Api

from service.api import create_app
from service.api.routes.health import package_version
from service.api.server import BackgroundServer
from service.settings import Settings

KEY = "k3y-for-the-api-tests-0123456789"
OTHER_KEY = "another-key-the-server-knows-42"


def test_every_route_but_health_needs_a_known_key(own_api: Callable[..., Api]) -> None:
    api = own_api(api_keys=[KEY, OTHER_KEY])
    assert api.http.get("/v1/health").status_code == 200

    routes = [
        ("GET", "/v1/catalogs"),
        ("POST", "/v1/catalogs"),
        ("GET", "/v1/catalogs/some-id"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/some-id"),
        ("POST", "/v1/jobs/some-id/cancel"),
        ("GET", "/v1/jobs/some-id/samples"),
        ("GET", "/v1/jobs/some-id/events"),
        ("GET", "/v1/jobs/some-id/export"),
    ]
    for method, url in routes:
        missing = api.http.request(method, url)
        assert missing.status_code == 401, url
        assert missing.json()["detail"] == (
            "missing the X-API-Key header; send one of the keys set in AF_API_KEYS"
        )
        wrong = api.http.request(method, url, headers={"X-API-Key": KEY[:-1] + "x"})
        assert wrong.status_code == 401, url
        assert wrong.json()["detail"] == (
            "the X-API-Key header holds a key this server does not know; "
            "send one of the keys set in AF_API_KEYS"
        )

    for key in (KEY, OTHER_KEY):
        listed = api.http.get("/v1/jobs", headers={"X-API-Key": key})
        assert listed.status_code == 200
        unknown = api.http.get("/v1/jobs/some-id", headers={"X-API-Key": key})
        assert unknown.status_code == 404, "a known key gets through to the route"


def test_health_names_the_database(api: Api) -> None:
    health = api.http.get("/v1/health").json()
    dialect = "postgresql" if "postgresql" in api.settings.resolved_database_url() else "sqlite"
    assert health == {
        "status": "ok",
        "database": dialect,
        "broker": "embedded",
        "workers": 0,
        "waiting_messages": health["waiting_messages"],
        "stranded_batches": health["stranded_batches"],
        "version": package_version(),
    }


def test_health_is_a_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql://postgres@127.0.0.1:5432/af_no_such_database"
    )
    with BackgroundServer(create_app(settings)) as server:
        response = httpx.get(f"{server.url}/v1/health")
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "the database does not answer (OperationalError); check AF_DATABASE_URL "
        "and that the database is running"
    )


def test_without_keys_the_api_is_open(api: Api) -> None:
    assert api.settings.api_keys == []
    assert api.http.get("/v1/jobs").status_code == 200


def test_the_openapi_document_describes_the_routes_and_the_key(
    own_api: Callable[..., Api],
) -> None:
    api = own_api(api_keys=[KEY])
    assert api.http.get("/docs").status_code == 200
    document = api.http.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/v1/health",
        "/v1/catalogs",
        "/v1/catalogs/{catalog_id}",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/samples",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/export",
        "/v1/models",
        "/v1/models/train",
        "/v1/models/{version_id}",
        "/v1/models/{version_id}/download",
        "/metrics",
    }
    schemes = document["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "One of the keys in AF_API_KEYS; not needed when AF_API_KEYS is empty.",
    }
    upload = document["paths"]["/v1/catalogs"]["post"]["requestBody"]["content"]
    assert set(upload) == {
        "application/json",
        "multipart/form-data",
        "application/yaml",
        "text/x-python",
    }
