"""Hostile catalog documents: alias bombs, deep nesting, huge node counts, duplicate keys.

Each is refused with one `CatalogError` line before anything expands it. The bombs here would
take gigabytes if expanded, so a regression shows as a crash rather than a slow test.
"""

import json

import pytest

from unified.catalogs import DocumentLimits, load_catalog_bytes
from unified.errors import CatalogError

OPERATION = 'paths:\n  /x:\n    get:\n      responses: {"200": {description: ok}}\n'
HEADER = 'openapi: 3.0.0\ninfo: {title: t, version: "1"}\n'


def error_of(raw: bytes, name: str = "api.yaml", **options: object) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog_bytes(raw, name, **options)  # type: ignore[arg-type]
    return str(caught.value)


def billion_laughs() -> bytes:
    """Nine levels of nine aliases each: 9**9 = 387,420,489 strings once expanded."""
    lines = [
        HEADER.rstrip("\n"),
        "x-lol:",
        '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return ("\n".join(lines) + "\n" + OPERATION).encode()


def test_billion_laughs_is_refused_at_the_alias_that_goes_over_the_budget() -> None:
    raw = billion_laughs()
    assert len(raw) < 600
    assert error_of(raw) == (
        "api.yaml: line 9, column 10: the alias *e brings in 66,430 nodes, and aliases may "
        "bring in 100,000 in all; write the repeated parts out, or use fewer aliases"
    )


def test_a_recursive_alias_is_refused() -> None:
    raw = (HEADER + "x-loop: &loop\n  - *loop\n" + OPERATION).encode()
    assert error_of(raw) == (
        "api.yaml: line 4, column 5: the alias *loop refers to a collection that contains it, "
        "so the document never ends; write the structure out (or use a $ref in an OpenAPI "
        "schema)"
    )


def test_aliases_within_the_budget_load() -> None:
    raw = (
        HEADER
        + "x-shared: &ok {description: ok}\n"
        + 'paths:\n  /x:\n    get:\n      responses: {"200": *ok}\n'
        + '  /y:\n    get:\n      responses: {"200": *ok}\n'
    ).encode()
    assert [tool.name for tool in load_catalog_bytes(raw, "api.yaml").tools] == ["get_x", "get_y"]


def test_an_alias_that_nests_too_deep_once_expanded_is_refused() -> None:
    raw = (HEADER + "x-a: &a [[[1]]]\nx-b: [[[*a]]]\n" + OPERATION).encode()
    limits = DocumentLimits(max_depth=6)
    assert error_of(raw, limits=limits) == (
        "api.yaml: line 4, column 9: the document nests more than 6 levels deep here; "
        "flatten the structure (a catalog needs far fewer levels)"
    )


def test_yaml_nested_200_levels_is_refused_with_its_line() -> None:
    raw = (HEADER + "x-deep: " + "[" * 200 + "]" * 200 + "\n" + OPERATION).encode()
    assert error_of(raw) == (
        "api.yaml: line 3, column 108: the document nests more than 100 levels deep here; "
        "flatten the structure (a catalog needs far fewer levels)"
    )


def test_json_nested_200_levels_is_refused_with_its_pointer() -> None:
    deep: dict[str, object] = {}
    for _ in range(200):
        deep = {"a": deep}
    document = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "x-deep": deep}
    assert error_of(json.dumps(document).encode(), "api.json") == (
        "api.json: /x-deep/a/a/a/a/a/a/a/a/a/... (100 levels down): the document nests more "
        "than 100 levels deep here; flatten the structure (a catalog needs far fewer levels)"
    )


def test_json_deeper_than_the_parser_allows_is_the_same_error() -> None:
    raw = b"[" * 5000 + b"]" * 5000
    for name in ("tools.json", "tools"):
        assert error_of(raw, name) == (
            f"{name}: line 1, column 1026: the document nests more than 100 levels deep "
            "here; flatten the structure (a catalog needs far fewer levels)"
        )


def test_a_json_lines_row_nested_too_deep_names_its_line() -> None:
    row = json.dumps({"type": "function", "function": {"name": "f", "parameters": {}}})
    deep = "[" * 150 + "]" * 150
    raw = f'{row}\n{{"name": "g", "parameters": {{"x": {deep}}}}}\n'.encode()
    assert error_of(raw, "tools.jsonl") == (
        "tools.jsonl: line 2 /parameters/x/0/0/0/0/0/0/0/0/... (100 levels down): the "
        "document nests more than 100 levels deep here; flatten the structure (a catalog "
        "needs far fewer levels)"
    )


def test_too_many_nodes_is_refused_in_yaml_and_json() -> None:
    limits = DocumentLimits(max_nodes=50)
    items = list(range(60))
    yaml_raw = (HEADER + f"x-items: {items}\n" + OPERATION).encode()
    json_raw = json.dumps({"openapi": "3.0.0", "x-items": items}).encode()
    expected = (
        "the document holds more than 50 nodes (keys, values and collections); split the "
        "catalog into smaller documents"
    )
    assert error_of(yaml_raw, limits=limits) == f"api.yaml: line 3, column 157: {expected}"
    assert error_of(json_raw, "api.json", limits=limits) == f"api.json: /x-items: {expected}"


def test_a_duplicate_key_names_the_key_and_both_lines() -> None:
    raw = (
        HEADER
        + "paths:\n  /x:\n    get:\n      operationId: first\n"
        + '      responses: {"200": {description: ok}}\n'
        + "    get:\n      operationId: second\n"
        + '      responses: {"200": {description: ok}}\n'
    ).encode()
    assert error_of(raw) == (
        "api.yaml: line 8, column 5: duplicate key 'get' (first at line 5); YAML would keep "
        "only the last one, so remove or rename one of them"
    )


def test_keys_that_are_equal_as_json_text_are_duplicates() -> None:
    raw = (HEADER + 'x-codes:\n  200: a\n  "200": b\n' + OPERATION).encode()
    assert "line 5, column 3: duplicate key '200' (first at line 4)" in error_of(raw)


def test_merge_keys_may_override_what_they_merge() -> None:
    raw = (
        HEADER
        + "x-base: &base {description: base, summary: s}\n"
        + "paths:\n  /x:\n    get:\n      <<: *base\n      description: own\n"
        + '      responses: {"200": {description: ok}}\n'
    ).encode()
    (tool,) = load_catalog_bytes(raw, "api.yaml").tools
    assert tool.description == "s\n\nown"


def test_an_xlam_rows_tools_string_is_held_to_the_same_limits() -> None:
    deep = "[" * 150 + "]" * 150
    parameters = {"x": {"type": json.loads(deep)}}
    tools = json.dumps([{"name": "f", "description": "d", "parameters": parameters}])
    row = json.dumps({"id": 1, "query": "q", "answers": "[]", "tools": tools})
    assert error_of(f"[{row}]".encode(), "rows.json").startswith(
        "rows.json: /0/tools/0/parameters/x/type/0/0/0/0/0/0/... (100 levels down): the "
        "document nests more than 100 levels deep here"
    )


def test_a_document_at_the_depth_limit_loads() -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(48):  # two levels each: the object and its properties
        schema = {"type": "object", "properties": {"a": schema}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    (tool,) = load_catalog_bytes(json.dumps(tools).encode(), "tools.json").tools
    assert tool.name == "f"


def ref_fan_out(levels: int, operations: int) -> bytes:
    """Each schema refers to the next twice: 2**levels leaves per operation once inlined."""
    schemas: dict[str, object] = {f"S{levels}": {"type": "string"}}
    for i in range(levels):
        following = {"$ref": f"#/components/schemas/S{i + 1}"}
        schemas[f"S{i}"] = {"type": "object", "properties": {"a": following, "b": following}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
    ok = {"responses": {"200": {"description": "ok"}}}
    paths = {f"/bomb{k}": {"post": {"requestBody": body, **ok}} for k in range(operations)}
    paths["/fine"] = {"get": ok}
    document = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths}
    return json.dumps({**document, "components": {"schemas": schemas}}).encode()


def test_an_operation_whose_refs_expand_too_far_is_skipped_with_a_warning() -> None:
    catalog = load_catalog_bytes(ref_fan_out(40, 1), "api.json")
    assert [tool.name for tool in catalog.tools] == ["get_fine"]
    assert catalog.warnings == [
        "/paths/~1bomb0/post: skipped: a schema of operation POST /bomb0 expands to more than "
        "5,000 subschemas once its $refs are inlined; simplify it"
    ]


def test_refs_that_expand_too_far_across_operations_refuse_the_document() -> None:
    limits = DocumentLimits(max_schemas=1_000)
    assert error_of(ref_fan_out(6, 20), "api.json", limits=limits) == (
        "api.json: /components/schemas/S5/properties/b: the document's tools expand to more "
        "than 1,000 subschemas once their $refs are inlined (the last in operation POST "
        "/bomb7); split the catalog or simplify its schemas"
    )


def test_a_chain_of_refs_nesting_too_deep_is_refused_when_no_operation_is_left() -> None:
    schemas: dict[str, object] = {"S200": {"type": "string"}}
    for i in range(200):
        following = {"$ref": f"#/components/schemas/S{i + 1}"}
        schemas[f"S{i}"] = {"type": "object", "properties": {"a": following}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {"/x": {"post": {"requestBody": body, "responses": {}}}},
        "components": {"schemas": schemas},
    }
    assert error_of(json.dumps(document).encode(), "api.json") == (
        "api.json: /components/schemas/S63/properties/a: a schema of operation POST /x nests "
        "more than 64 levels deep once its $refs are inlined; simplify it"
    )


# --- Python modules and type strings --------------------------------------------------------

DOCSTRING = '    """Do it."""\n'


def test_a_deeply_nested_annotation_is_refused_with_its_line() -> None:
    annotation = "List[" * 150 + "int" + "]" * 150
    source = f"from typing import List\n\n\ndef f(x: {annotation}) -> None:\n{DOCSTRING}"
    assert error_of(source.encode(), "tools.py") == (
        "tools.py: line 4: the type annotation nests more than 32 levels deep; simplify it"
    )


def test_source_too_deep_for_pythons_parser_is_refused() -> None:
    source = "def f(x: int = " + "-" * 100_000 + "1) -> None:\n" + DOCSTRING
    assert error_of(source.encode(), "tools.py") == (
        "tools.py: the module nests too deeply for Python to parse; simplify it"
    )


def test_classes_whose_fields_multiply_are_refused() -> None:
    """Each class has two fields of the next one: 2**30 leaves once written out."""
    lines = ["from typing import TypedDict", "", "class C30(TypedDict):", "    x: int"]
    for i in range(29, -1, -1):
        lines += [f"class C{i}(TypedDict):", f"    a: C{i + 1}", f"    b: C{i + 1}"]
    source = "\n".join(lines) + "\n\ndef f(a: C0) -> None:\n" + DOCSTRING
    assert error_of(source.encode(), "tools.py") == (
        "tools.py: line 32: class C20 expands to more than 10,000 schema nodes through the "
        "classes of its fields; simplify it"
    )


def test_a_long_chain_of_classes_is_refused() -> None:
    lines = ["from typing import TypedDict", "", "class C0(TypedDict):"]
    for i in range(200):
        lines += [f"    x: C{i + 1}", "", f"class C{i + 1}(TypedDict):"]
    source = "\n".join(lines) + "\n    x: int\n\ndef f(a: C0) -> None:\n" + DOCSTRING
    assert error_of(source.encode(), "tools.py") == (
        "tools.py: line 99: class C32 is nested more than 32 classes deep in the fields of "
        "others; simplify it"
    )


def test_a_deeply_nested_xlam_type_string_is_refused() -> None:
    kind = "List[" * 40 + "int" + "]" * 40
    tools = [{"name": "f", "description": "d", "parameters": {"x": {"type": kind}}}]
    message = error_of(json.dumps(tools).encode(), "tools.json")
    assert message.startswith(
        "tools.json: /0/parameters/x/type: type 'List[List[List[List[List[List[List[List[...' "
        "nests more than 32 levels deep; write a Python type such as str"
    )


def test_a_duplicate_key_in_json_names_the_key_and_both_lines() -> None:
    raw = (
        b'{"openapi": "3.0.0", "info": {"title": "t", "version": "1"},\n'
        b' "paths": {"/x": {\n'
        b'   "get": {"operationId": "first", "responses": {"200": {"description": "ok"}}},\n'
        b'   "get": {"operationId": "second", "responses": {"200": {"description": "ok"}}}\n'
        b"}}}\n"
    )
    assert error_of(raw, "api.json") == (
        "api.json: line 4, column 4: duplicate key 'get' (first at line 3); JSON readers keep "
        "only the last one, so remove or rename one of them"
    )


def test_a_duplicate_key_in_a_json_lines_row_names_its_line() -> None:
    row = json.dumps({"name": "f", "parameters": {"type": "object", "properties": {}}})
    twice = '{"name": "g", "name": "h", "parameters": {"type": "object", "properties": {}}}'
    raw = f"{row}\n\n{twice}\n".encode()
    assert error_of(raw, "tools.jsonl").startswith(
        "tools.jsonl: line 3, column 15: duplicate key 'name' (first at line 3);"
    )


def test_json_that_yaml_cannot_place_still_names_the_duplicate() -> None:
    # An escaped surrogate pair is valid JSON that PyYAML refuses: the key is named, no line.
    raw = b'{"openapi": "3.0.0", "x-smile": "\\ud83d\\ude00",\n'
    raw += b'"info": {"title": "t", "title": "u", "version": "1"}}'
    assert error_of(raw, "api.json").startswith("api.json: duplicate key 'title';")
