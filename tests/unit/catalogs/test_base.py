"""Errors every catalog kind shares: reading, parsing, picking a loader, size limits."""

import hashlib
import json
from pathlib import Path

import pytest

from unified.catalogs import load_catalog, load_catalog_bytes
from unified.errors import CatalogError, UnknownNameError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "travel_api.yaml"


def test_invalid_yaml_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text("openapi: 3.0.0\ninfo:\n  title: [unclosed\npaths: {}\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line ")
    assert "column" in message and "neither JSON nor YAML" in message
    assert "fix the syntax" in message


def test_invalid_json_file_says_fix_the_json(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text('[{"name": "f", "parameters": {]')
    with pytest.raises(CatalogError, match=r"tools\.json: not valid JSON: .*fix the JSON syntax"):
        load_catalog(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_bytes(b"openapi: 3.0.0\ntitle: caf\xe9\n")
    with pytest.raises(CatalogError, match=r"api\.yaml: not UTF-8 text \(byte 25\); save"):
        load_catalog(path)


def test_unknown_document_kind_lists_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text("title: my notes\nitems: [1, 2]\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: unknown document kind")
    assert "OpenAPI 3.x or Swagger 2.0" in message
    assert "found an object with keys title, items" in message
    assert "known kinds: bfcl, openai, openapi, python, xlam" in message


def test_plain_text_is_an_unknown_kind(tmp_path: Path) -> None:
    path = tmp_path / "readme.txt"
    path.write_text("just some words\n")
    with pytest.raises(CatalogError, match=r"unknown document kind.*found a str"):
        load_catalog(path)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text("[" + ",".join(["1"] * 600) + "]")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, max_bytes=1000)
    assert str(caught.value) == (
        f"{path}: file is 1,201 bytes, more than the limit of 1,000; "
        "split the catalog or raise the limit"
    )


def test_uploaded_bytes_over_the_limit_are_refused() -> None:
    with pytest.raises(CatalogError, match=r"upload\.yaml: file is 2,048 bytes, more than"):
        load_catalog_bytes(b" " * 2048, "upload.yaml", max_bytes=1024)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"nope\.yaml: cannot read the file: No such file"):
        load_catalog(tmp_path / "nope.yaml")


def test_an_explicit_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown catalog kind 'graphql'\. Known: bfcl, "):
        load_catalog(EXAMPLE, kind="graphql")


def test_an_explicit_kind_that_does_not_fit_the_document_names_both_kinds() -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(EXAMPLE, kind="xlam")
    assert str(caught.value) == (
        f"{EXAMPLE}: the document is a 'openapi' catalog, not 'xlam'; "
        "drop the kind to detect it, or name 'openapi'"
    )


def test_catalog_keeps_the_hash_of_the_original_document() -> None:
    catalog = load_catalog(EXAMPLE)
    assert catalog.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert catalog.kind == "openapi" and catalog.title == "Travel Helper API"
    weather = catalog.tool("get_weather")
    assert weather is not None and weather.source is not None and weather.source.http is not None
    assert weather.source.http.in_ == {"city": "path", "unit": "query", "days": "query"}


# --- enums whose members are not of the declared type ---------------------------------------


def enum_error(raw: bytes, name: str) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog_bytes(raw, name)
    return str(caught.value)


def test_an_openapi_enum_member_of_another_type_names_the_parameter() -> None:
    raw = (
        b'openapi: 3.0.0\ninfo: {title: t, version: "1"}\npaths:\n  /x:\n    get:\n'
        b"      parameters:\n"
        b"        - {name: n, in: query, schema: {type: integer, enum: [1, two]}}\n"
        b'      responses: {"200": {description: ok}}\n'
    )
    assert enum_error(raw, "api.yaml") == (
        "api.yaml: /paths/~1x/get: tool 'get_x': parameter 'n' has type integer but its enum "
        "lists 'two' (a string); make every member of type integer, or change the type"
    )


def test_a_nested_enum_mismatch_names_the_dotted_parameter_and_hints_at_yaml() -> None:
    raw = (
        b"- type: function\n  function:\n    name: f\n    parameters:\n      type: object\n"
        b"      properties:\n        filter:\n          type: object\n          properties:\n"
        b"            flags: {type: array, items: {type: string, enum: [on, off]}}\n"
    )
    assert enum_error(raw, "tools.yaml") == (
        "tools.yaml: /0: tool 'f': parameter 'filter.flags[]' has type string but its enum "
        "lists True (a boolean); make every member of type string, or change the type (YAML "
        "reads unquoted yes, no, on, off, true, false and numbers as booleans and numbers: "
        "quote them)"
    )


def test_enums_that_fit_their_types_load() -> None:
    tools = [
        {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {
                    "whole": {"type": "integer", "enum": [1, 2.0]},
                    "maybe": {"type": ["string", "null"], "enum": ["a", None]},
                    "untyped": {"enum": [1, "a", None]},
                },
            },
        }
    ]
    assert load_catalog_bytes(json.dumps(tools).encode(), "tools.json").tools[0].name == "f"
