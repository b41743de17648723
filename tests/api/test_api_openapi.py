"""The OpenAPI document describes every response the API gives: 401 where keys are checked, 422
and 400 with the project's error body (not FastAPI's default HTTPValidationError), 413 where
sizes are limited, 404 and 409 where routes give them; real error responses fit it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import pytest
from api_support import Api, add_job, real_samples
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from service.api import create_app
from service.settings import Settings

KEY = "k3y-for-the-openapi-tests-0123456"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite://")).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def response_ref(operation: dict[str, Any], status: int) -> str:
    return operation["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)  # FastAPI's own description of an event stream (itemSchema) is 3.2
    events = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]
    assert events["200"]["content"] == {"text/event-stream": {"schema": {"type": "string"}}}
    assert "event: finished" in events["200"]["description"]
    assert response_ref({"responses": events}, 404) == "#/components/schemas/Message"


def test_fastapis_default_validation_error_is_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    refused = schemas["RequestRefused"]
    assert refused["required"] == ["detail"]
    assert refused["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/Problem"}
    assert schemas["Problem"]["required"] == ["in", "field", "message"]


def test_every_keyed_operation_documents_401_and_422(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if path == "/v1/health":
            assert set(operation["responses"]) == {"200", "503"}
            continue
        assert response_ref(operation, 401) == "#/components/schemas/Message", (method, path)
        assert response_ref(operation, 422) == "#/components/schemas/RequestRefused", (
            method,
            path,
        )


def test_400_413_404_and_409_are_documented_where_they_happen(document: dict[str, Any]) -> None:
    app = create_app(Settings(database_url="sqlite://"))
    json_bodies = {
        (method, route.path)
        for route in app.routes
        # The dashboard's routes (its login form) are not part of the API's document.
        if isinstance(route, APIRoute) and route.include_in_schema and route.body_field is not None
        for method in route.methods
    }
    assert json_bodies == {("POST", "/v1/jobs"), ("POST", "/v1/models/train")}
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        assert ("400" in statuses) == ((method, path) in json_bodies), (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
        if "400" in statuses:
            assert response_ref(operation, 400) == "#/components/schemas/RequestRefused"
    paths = document["paths"]
    assert "413" in paths["/v1/catalogs"]["post"]["responses"]
    assert "409" in paths["/v1/models/train"]["post"]["responses"]
    assert "409" in paths["/v1/models/{version_id}/download"]["get"]["responses"]
    assert "404" in paths["/v1/jobs"]["post"]["responses"]
    assert "404" in paths["/v1/models"]["get"]["responses"]


def fits(document: dict[str, Any], response: httpx.Response, path: str, method: str) -> None:
    """Validate the response body against the schema the document gives its status."""
    operation = document["paths"][path][method]
    schema = {**document, "$ref": response_ref(operation, response.status_code)}
    jsonschema.Draft202012Validator(schema).validate(response.json())


def test_real_error_responses_fit_the_document(
    own_api: Callable[..., Api], document: dict[str, Any]
) -> None:
    api = own_api(api_keys=[KEY])
    keyed = {"X-API-Key": KEY}
    job_id = add_job(api.sessions, real_samples()[:1])

    fits(document, api.http.get("/v1/jobs"), "/v1/jobs", "get")  # 401
    invalid = api.http.get("/v1/jobs", params={"offset": -1}, headers=keyed)
    assert invalid.status_code == 422
    fits(document, invalid, "/v1/jobs", "get")
    finished = api.http.post(f"/v1/jobs/{job_id}/cancel", headers=keyed)
    assert finished.status_code == 422
    assert "errors" not in finished.json()
    fits(document, finished, "/v1/jobs/{job_id}/cancel", "post")
    unreadable = api.http.post(
        "/v1/jobs", content=b"{", headers={**keyed, "content-type": "application/json"}
    )
    assert unreadable.status_code == 400
    fits(document, unreadable, "/v1/jobs", "post")
    missing = api.http.get("/v1/catalogs/nope", headers=keyed)
    assert missing.status_code == 404
    fits(document, missing, "/v1/catalogs/{catalog_id}", "get")
