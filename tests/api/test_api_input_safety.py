"""No input makes a 5xx: NUL bytes and other control characters in path parameters, query
parameters and JSON bodies, lone surrogates, out-of-range paging, unreadable bodies and unsafe
catalog names each get a 4xx naming the field, on SQLite and on PostgreSQL (which refuses NUL in
text: these requests were 500s there)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import orjson
from api_support import TRAVEL_CATALOG, Api, add_catalog, add_job, real_samples

KEY = "k3y-for-the-input-safety-tests-01"

SMALL_OPENAPI = """openapi: 3.1.0
info: {title: TITLE, version: '1'}
paths:
  /ping:
    get:
      operationId: ping
      summary: SUMMARY
      responses: {'200': {description: ok}}
"""


def nul_in(place: str, value: str, at: int) -> str:
    """The message for a NUL at character `at` of `value`, given at `place`."""
    return (
        f"{place}: holds the control character U+0000 at character {at}, which is not "
        f"allowed here (got {value!r}); remove it"
    )


def assert_refused(response: httpx.Response, status: int, detail: str, fields: list[str]) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"] == detail
    assert [error["field"] for error in body["errors"]] == fields


def test_a_nul_in_a_path_parameter_is_a_422_naming_it(api: Api) -> None:
    job_id = add_job(api.sessions, real_samples()[:1])
    for path, field in [
        ("/v1/jobs/ab%00cd", "job_id"),
        ("/v1/jobs/ab%00cd/samples", "job_id"),
        ("/v1/jobs/ab%00cd/export", "job_id"),
        ("/v1/catalogs/ab%00cd", "catalog_id"),
        ("/v1/models/ab%00cd", "version_id"),
    ]:
        detail = nul_in(f"path parameter '{field}'", "ab\x00cd", 2)
        assert_refused(api.http.get(path), 422, detail, [field])
    cancel = api.http.post("/v1/jobs/ab%00cd/cancel")
    assert_refused(cancel, 422, nul_in("path parameter 'job_id'", "ab\x00cd", 2), ["job_id"])
    assert api.http.get(f"/v1/jobs/{job_id}").status_code == 200


def test_nul_and_control_characters_in_query_filters_are_a_422(api: Api) -> None:
    job_id = add_job(api.sessions, real_samples()[:2])
    samples = api.http.get(f"/v1/jobs/{job_id}/samples", params={"reason": "bad\x00reason"})
    detail = nul_in("query parameter 'reason'", "bad\x00reason", 3)
    assert_refused(samples, 422, detail, ["reason"])

    models = api.http.get("/v1/models", params={"catalog_id": "c\x00"})
    detail = nul_in("query parameter 'catalog_id'", "c\x00", 1)
    assert_refused(models, 422, detail, ["catalog_id"])

    tab = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "xlam\t"})
    assert_refused(
        tab,
        422,
        "query parameter 'format': holds the control character U+0009 at character 4, which "
        "is not allowed here (got 'xlam\\t'); remove it",
        ["format"],
    )
    both = api.http.get("/v1/jobs/a%1Bb", params={"status": "\x7f"})
    assert both.status_code == 422
    assert [error["field"] for error in both.json()["errors"]] == ["job_id", "status"]


def test_nul_in_job_and_training_bodies_is_a_422_naming_the_field(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)
    job = api.http.post("/v1/jobs", json={"catalog_id": "a\x00b", "n": 1})
    body_field = "field 'catalog_id' of the request body"
    assert_refused(job, 422, nul_in(body_field, "a\x00b", 1), ["catalog_id"])

    nested = api.http.post(
        "/v1/jobs",
        json={"catalog_id": catalog_id, "n": 1, "generator_options": {"model": "m\x00"}},
    )
    detail = nul_in("field 'generator_options.model' of the request body", "m\x00", 1)
    assert_refused(nested, 422, detail, ["generator_options.model"])

    key = api.http.post(
        "/v1/jobs", json={"catalog_id": catalog_id, "n": 1, "stage_options": {"k\x00": {}}}
    )
    assert key.status_code == 422
    assert key.json()["errors"][0]["field"] == "stage_options.k\\u0000"
    assert key.json()["detail"].startswith("key 'k\\u0000' of field 'stage_options'")

    train = api.http.post("/v1/models/train", json={"catalog_id": "\x00"})
    assert_refused(train, 422, nul_in(body_field, "\x00", 0), ["catalog_id"])
    # Lines and tabs are text: they pass this check and meet the field's own validation.
    lines = api.http.post("/v1/jobs", json={"catalog_id": "a\nb\tc", "n": 1})
    assert lines.status_code == 404
    assert lines.json()["detail"].startswith("catalog 'a\nb\tc' does not exist")


def test_a_lone_surrogate_in_a_body_is_a_422(api: Api) -> None:
    response = api.http.post(
        "/v1/jobs",
        content=b'{"catalog_id": "\\ud800", "n": 1}',
        headers={"content-type": "application/json"},
    )
    assert_refused(
        response,
        422,
        "field 'catalog_id' of the request body: holds the lone surrogate (half of a "
        "character) U+D800 at character 0, which is not allowed here (got '\\ud800'); remove it",
        ["catalog_id"],
    )


def test_nul_in_a_catalog_body_or_document_is_a_422(api: Api) -> None:
    text = TRAVEL_CATALOG.read_text(encoding="utf-8")
    wrapped = api.http.post("/v1/catalogs", json={"name": "a\x00b.yaml", "content": text})
    name_field = "field 'name' of the request body"
    assert_refused(wrapped, 422, nul_in(name_field, "a\x00b.yaml", 1), ["name"])

    content = api.http.post("/v1/catalogs", json={"content": "# \x00\n"})
    content_field = "field 'content' of the request body"
    assert_refused(content, 422, nul_in(content_field, "# \x00\n", 2), ["content"])

    document = {"openapi": "3.1.0", "info": {"title": "T\x00", "version": "1"}}
    as_json = api.http.post("/v1/catalogs", json={**document, "paths": {}})
    title_field = "field 'info.title' of the request body"
    assert_refused(as_json, 422, nul_in(title_field, "T\x00", 1), ["info.title"])

    # YAML's "\0" and a Python docstring's "\x00" write a NUL the bytes do not show.
    yaml_title = SMALL_OPENAPI.replace("TITLE", '"api\\0"').replace("SUMMARY", "Ping it.")
    titled = api.http.post("/v1/catalogs", params={"name": "api.yaml"}, content=yaml_title.encode())
    assert titled.status_code == 422
    assert titled.json() == {
        "detail": "api.yaml: the title holds the control character U+0000 at character 3, "
        "which is not allowed here; remove it from the document"
    }
    module = (
        b'def ping(host: str) -> str:\n    """Ping \\x00 a host.\n\n'
        b'    Args:\n        host: it\n    """\n    return host\n'
    )
    python = api.http.post("/v1/catalogs", params={"name": "tools.py"}, content=module)
    assert python.status_code == 422
    assert python.json() == {
        "detail": "tools.py: tool 'ping': description holds the control character U+0000 at "
        "character 5, which is not allowed here; remove it from the document"
    }


def test_a_title_longer_than_its_column_is_cut(api: Api) -> None:
    long_title = "T" * 600
    document = SMALL_OPENAPI.replace("TITLE", long_title).replace("SUMMARY", "Ping it.")
    stored = api.http.post("/v1/catalogs", params={"name": "long.yaml"}, content=document)
    assert stored.status_code == 201, stored.text
    assert stored.json()["title"] == "T" * 512


def test_catalog_names_with_line_breaks_or_bidi_controls_are_refused(api: Api) -> None:
    text = TRAVEL_CATALOG.read_text(encoding="utf-8")
    line_break = api.http.post("/v1/catalogs", json={"name": "travel\r\n.yaml", "content": text})
    assert_refused(
        line_break,
        422,
        "field 'name' of the request body: holds the control character U+000D at character 6, "
        "which is not allowed here (got 'travel\\r\\n.yaml'); remove it",
        ["name"],
    )
    bidi = "travel\u202elmay.py"
    as_query = api.http.post("/v1/catalogs", params={"name": bidi}, content=text.encode())
    assert_refused(
        as_query,
        422,
        "query parameter 'name': holds the bidirectional control U+202E at character 6, which "
        "is not allowed here (got 'travel\\u202elmay.py'); remove it",
        ["name"],
    )
    as_file = api.http.post("/v1/catalogs", files={"file": (bidi, text.encode())})
    assert as_file.status_code == 422
    assert as_file.json()["errors"][0]["field"] == "file.filename"
    isolate = api.http.post("/v1/catalogs", json={"name": "a\u2067b.yaml", "content": text})
    assert isolate.status_code == 422
    assert "the bidirectional control U+2067 at character 1" in isolate.json()["detail"]

    plain = api.http.post("/v1/catalogs", json={"name": "voyage été.yaml", "content": text})
    assert plain.status_code == 201
    assert plain.json()["name"] == "voyage été.yaml"


def test_paging_is_bounded_with_a_422_naming_the_bound(api: Api) -> None:
    for route in ("/v1/jobs", "/v1/catalogs", "/v1/models"):
        huge = api.http.get(route, params={"offset": "100000000000000000000"})
        assert_refused(
            huge,
            422,
            "query parameter 'offset': Input should be less than or equal to 1000000000 "
            "(got '100000000000000000000'); fix its value",
            ["offset"],
        )
        limit = api.http.get(route, params={"limit": "100000000000000000000"})
        assert_refused(
            limit,
            422,
            "query parameter 'limit': Input should be less than or equal to 1000 "
            "(got '100000000000000000000'); fix its value",
            ["limit"],
        )
        assert api.http.get(route, params={"offset": 1_000_000_000}).json()["data"] == []

    job_id = add_job(api.sessions, real_samples()[:2])
    cursor = base64.urlsafe_b64encode(orjson.dumps({"after": 2**64 - 1})).decode().rstrip("=")
    beyond = api.http.get(f"/v1/jobs/{job_id}/samples", params={"cursor": cursor})
    assert beyond.status_code == 422
    assert beyond.json()["detail"].startswith(
        f"query parameter 'cursor' ({cursor!r}) is not a cursor this API gave"
    )


def test_unreadable_bodies_are_a_400(api: Api) -> None:
    json_type = {"content-type": "application/json"}
    for route in ("/v1/jobs", "/v1/models/train"):
        not_utf8 = api.http.post(route, content=b'{"catalog_id": "\xff"}', headers=json_type)
        detail = (
            "the request body cannot be read (not utf-8 text: invalid start byte at byte 16); "
            "send JSON encoded as UTF-8"
        )
        assert_refused(not_utf8, 400, detail, [""])
        broken = api.http.post(route, content=b'{"catalog_id": ', headers=json_type)
        assert_refused(
            broken,
            400,
            "the request body is not valid JSON at character 15 (Expecting value); send valid JSON",
            [""],
        )
    nan = api.http.post(
        "/v1/jobs", content=b'{"catalog_id": "c", "n": 1, "seed": NaN}', headers=json_type
    )
    assert_refused(
        nan,
        400,
        "field 'seed' of the request body: is nan, which is not a JSON number (got nan); "
        "send a number",
        ["seed"],
    )


def test_without_a_key_the_input_is_not_looked_at(own_api: Callable[..., Api]) -> None:
    api = own_api(api_keys=[KEY])
    assert api.http.get("/v1/jobs/ab%00cd").status_code == 401
    assert api.http.post("/v1/jobs", json={"catalog_id": "\x00", "n": 1}).status_code == 401
    keyed = api.http.get("/v1/jobs/ab%00cd", headers={"X-API-Key": KEY})
    assert keyed.status_code == 422
