"""`/v1/catalogs`: every way to upload a catalog, reading it back, and every refusal."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import orjson
from api_support import DATA, TRAVEL_CATALOG, Api

PETSTORE = DATA / "openapi" / "oai-v3.0-petstore.yaml"
UBER = DATA / "openapi" / "oai-v2.0-uber.json"
OPENAI_TOOLS = DATA / "functions" / "openai_cookbook_tools.json"
PYTHON_MODULE = DATA / "python" / "hints_and_docstrings.py"
MISSING_REFERENCE = DATA / "openapi" / "openapi-spec-validator-v2.0-missing-reference.yaml"


def test_multipart_upload_stores_the_normalised_tools(api: Api) -> None:
    raw = TRAVEL_CATALOG.read_bytes()
    response = api.http.post(
        "/v1/catalogs", files={"file": ("travel_api.yaml", raw, "application/yaml")}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "travel_api.yaml"
    assert body["kind"] == "openapi"
    assert body["title"] == "Travel Helper API"
    assert body["sha256"] == hashlib.sha256(raw).hexdigest()
    assert [tool["name"] for tool in body["tools"]] == [
        "get_weather",
        "search_flights",
        "convert_currency",
    ]
    weather = body["tools"][0]
    assert weather["parameters"]["required"] == ["city"]
    assert weather["source"]["http"]["in"]["city"] == "path"

    assert body.pop("warnings") == []  # only the upload's answer carries them

    stored = api.http.get(f"/v1/catalogs/{body['id']}")
    assert stored.status_code == 200
    assert stored.json() == body


def test_a_json_body_is_the_catalog_document_itself(api: Api) -> None:
    response = api.http.post(
        "/v1/catalogs", content=OPENAI_TOOLS.read_bytes(), headers=_json_type()
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "openai"
    assert body["name"] == "catalog.json"
    assert body["tools"][0]["name"] == "get_current_weather"

    swagger = api.http.post(
        "/v1/catalogs", params={"name": UBER.name}, content=UBER.read_bytes(), headers=_json_type()
    )
    assert swagger.status_code == 201, swagger.text
    assert (swagger.json()["kind"], swagger.json()["name"]) == ("openapi", UBER.name)
    assert swagger.json()["title"] == "Uber API"


def test_a_json_wrapper_carries_name_content_and_kind(api: Api) -> None:
    response = api.http.post(
        "/v1/catalogs",
        json={"name": "petstore.yaml", "content": PETSTORE.read_text(), "kind": "openapi"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["kind"]) == ("petstore.yaml", "openapi")
    assert {tool["name"] for tool in body["tools"]} == {"listPets", "createPets", "showPetById"}
    assert body["sha256"] == hashlib.sha256(PETSTORE.read_bytes()).hexdigest()


def test_a_raw_yaml_or_python_body_is_loaded_by_content(api: Api) -> None:
    yaml_response = api.http.post(
        "/v1/catalogs",
        params={"name": "petstore.yaml"},
        content=PETSTORE.read_bytes(),
        headers={"content-type": "application/yaml"},
    )
    assert yaml_response.status_code == 201, yaml_response.text
    assert yaml_response.json()["kind"] == "openapi"

    python_response = api.http.post(
        "/v1/catalogs",
        params={"name": PYTHON_MODULE.name},
        content=PYTHON_MODULE.read_bytes(),
        headers={"content-type": "text/x-python"},
    )
    assert python_response.status_code == 201, python_response.text
    body = python_response.json()
    assert body["kind"] == "python"
    assert body["tools"], "the module's public functions become tools"
    assert all(t["source"]["callable"].startswith("hints_and_docstrings:") for t in body["tools"])


def test_catalogs_are_listed_newest_first(api: Api) -> None:
    ids = []
    for _ in range(2):
        response = api.http.post(
            "/v1/catalogs", json={"name": "travel_api.yaml", "content": TRAVEL_CATALOG.read_text()}
        )
        ids.append(response.json()["id"])
    listing = api.http.get("/v1/catalogs", params={"limit": 1000}).json()
    listed = [catalog["id"] for catalog in listing["data"]]
    assert listing["count"] >= 2
    assert listed.index(ids[1]) < listed.index(ids[0])
    created = [catalog["created_at"] for catalog in listing["data"]]
    assert created == sorted(created, reverse=True)


def test_a_malformed_catalog_is_refused_naming_the_file_and_the_place(api: Api) -> None:
    response = api.http.post(
        "/v1/catalogs",
        files={"file": (MISSING_REFERENCE.name, MISSING_REFERENCE.read_bytes())},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(f"{MISSING_REFERENCE.name}: /paths/~1pets/get/responses/200/")
    assert "bundle the referenced file into this document" in detail

    broken = PETSTORE.read_text().replace("paths:", "paths: [", 1)
    response = api.http.post("/v1/catalogs", json={"name": "petstore.yaml", "content": broken})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("petstore.yaml: line ")
    assert "fix the syntax there" in detail


def test_invalid_json_and_unknown_documents_say_what_to_send(api: Api) -> None:
    truncated = OPENAI_TOOLS.read_bytes()[:200]
    response = api.http.post("/v1/catalogs", content=truncated, headers=_json_type())
    assert response.status_code == 422
    assert response.json()["detail"].startswith("catalog.json: not valid JSON")
    assert "fix the JSON syntax" in response.json()["detail"]

    response = api.http.post("/v1/catalogs", json={"greeting": "hello"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "unknown document kind" in detail
    assert "found an object with keys greeting" in detail


def test_an_unknown_kind_lists_the_known_ones(api: Api) -> None:
    expected = "Unknown catalog kind 'graphql'. Known: bfcl, openai, openapi, python, xlam"
    wrapped = api.http.post(
        "/v1/catalogs", json={"content": PETSTORE.read_text(), "kind": "graphql"}
    )
    assert (wrapped.status_code, wrapped.json()["detail"]) == (422, expected)
    form = api.http.post(
        "/v1/catalogs",
        files={"file": (PETSTORE.name, PETSTORE.read_bytes())},
        data={"kind": "graphql"},
    )
    assert (form.status_code, form.json()["detail"]) == (422, expected)
    raw = api.http.post("/v1/catalogs", params={"kind": "graphql"}, content=PETSTORE.read_bytes())
    assert (raw.status_code, raw.json()["detail"]) == (422, expected)


def test_an_empty_body_says_how_to_send_a_catalog(api: Api) -> None:
    response = api.http.post("/v1/catalogs", content=b"")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the request body is empty; send the catalog document as the body, as the form field "
        '\'file\', or as JSON {"name": ..., "content": "<the document>"}'
    )


def test_badly_shaped_uploads_say_what_to_change(api: Api) -> None:
    no_file = api.http.post("/v1/catalogs", files={"document": ("a.yaml", b"openapi: 3.0.0")})
    assert no_file.status_code == 422
    assert no_file.json()["detail"] == (
        "the form has no file field 'file' (fields sent: 'document'); "
        "send the catalog file as 'file'"
    )

    not_text = api.http.post("/v1/catalogs", json={"name": "x.json", "content": {"openapi": 3}})
    assert not_text.status_code == 422
    assert (
        "field 'content' of the request body must be the catalog document as text"
        in (not_text.json()["detail"])
    )


def test_an_unknown_catalog_id_is_a_404_naming_it(api: Api) -> None:
    response = api.http.get("/v1/catalogs/no-such-catalog")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("catalog 'no-such-catalog' does not exist;")


def test_a_catalog_over_the_limit_is_a_413_in_every_form(own_api: Callable[..., Api]) -> None:
    api = own_api(max_catalog_bytes=1000)
    raw = TRAVEL_CATALOG.read_bytes()
    expected = (
        f"the catalog is {len(raw):,} bytes, more than the limit of 1,000 (AF_MAX_CATALOG_BYTES); "
        "split the catalog or raise AF_MAX_CATALOG_BYTES"
    )
    forms = [
        {"files": {"file": ("travel_api.yaml", raw)}},
        {"json": {"name": "travel_api.yaml", "content": raw.decode()}},
        {"content": raw, "headers": {"content-type": "application/yaml"}},
    ]
    for form in forms:
        response = api.http.post("/v1/catalogs", **form)  # type: ignore[arg-type]
        assert response.status_code == 413, form
        assert response.json()["detail"] == expected

    small = api.http.post("/v1/catalogs", content=PETSTORE.read_bytes()[:900])
    assert small.status_code == 422, "under the limit, the document itself is judged"


def test_a_body_far_over_the_limit_is_refused_by_its_declared_length(
    own_api: Callable[..., Api],
) -> None:
    api = own_api(max_catalog_bytes=1000)
    body = orjson.dumps(["x" * 200_000])
    response = api.http.post("/v1/catalogs", content=body, headers=_json_type())
    assert response.status_code == 413
    assert response.json()["detail"].startswith(f"the catalog is {len(body):,} bytes, more than")


def _json_type() -> dict[str, str]:
    return {"content-type": "application/json"}


def test_a_billion_laughs_upload_is_a_422_naming_the_alias(api: Api) -> None:
    lines = [
        "openapi: 3.0.0",
        'info: {title: t, version: "1"}',
        "x-lol:",
        "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    ]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    lines.append('paths: {/x: {get: {responses: {"200": {description: ok}}}}}')
    response = api.http.post(
        "/v1/catalogs?name=bomb.yaml",
        content="\n".join(lines).encode(),
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "bomb.yaml: line 9, column 10: the alias *e brings in 66,430 nodes, and "
        "aliases may bring in 100,000 in all; write the repeated parts out, or use fewer aliases"
    }


def test_a_document_nested_200_levels_is_a_422(api: Api) -> None:
    response = api.http.post(
        "/v1/catalogs",
        content=b'{"openapi": "3.0.0", "x-deep": ' + b"[" * 200 + b"]" * 200 + b"}",
        headers=_json_type(),
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("catalog.json: /x-deep/0/0/0/0/0/0/0/0/0/... ")
    assert "nests more than 100 levels deep" in response.json()["detail"]


def test_the_upload_answer_lists_what_the_loader_renamed(api: Api) -> None:
    document = (
        'openapi: 3.0.0\ninfo: {title: t, version: "1"}\npaths:\n  /x/{id}:\n    get:\n'
        "      parameters:\n"
        "        - {name: id, in: path, required: true, schema: {type: string}}\n"
        "        - {name: id, in: query, schema: {type: integer}}\n"
        '      responses: {"200": {description: ok}}\n'
    )
    response = api.http.post("/v1/catalogs", json={"name": "clash.yaml", "content": document})
    assert response.status_code == 201
    body = response.json()
    assert body["warnings"] == [
        "/paths/~1x~1{id}/get/parameters/1: query parameter 'id' has the same name as a path "
        "parameter (operation GET /x/{id}); its argument is named 'id_query' and is still sent "
        "as query parameter 'id'"
    ]
    (tool,) = body["tools"]
    assert tool["source"]["http"]["in"] == {"id": "path", "id_query": "query"}
    assert tool["source"]["http"]["sent_as"] == {"id_query": "id"}
    stored = api.http.get(f"/v1/catalogs/{body['id']}").json()
    assert "warnings" not in stored and stored["tools"] == body["tools"]
