"""The OpenAPI / Swagger catalog loader, on real public documents and small derived ones."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from unified.catalogs import Catalog, load_catalog, load_catalog_bytes
from unified.catalogs.base import LOADERS, parse_document
from unified.catalogs.openapi import tool_name
from unified.errors import CatalogError
from unified.model import Tool

DATA = Path(__file__).resolve().parents[2] / "data" / "openapi"


@functools.cache
def load(name: str) -> Catalog:
    return load_catalog(DATA / name)


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def load_text(source: str, name: str = "derived.yaml") -> Catalog:
    return load_catalog_bytes(source.encode(), name)


def load_dict(document: dict[str, Any], name: str = "inline.json") -> Catalog:
    return load_catalog_bytes(orjson.dumps(document), name)


def tool(catalog: Catalog, name: str) -> Tool:
    found = catalog.tool(name)
    assert found is not None, [t.name for t in catalog.tools]
    return found


def places(t: Tool) -> dict[str, str]:
    assert t.source is not None and t.source.http is not None
    return t.source.http.in_


def error_of(source: str, name: str = "derived.yaml") -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        load_text(source, name)
    return caught.value


def v3(paths: dict[str, Any], version: str = "3.0.3", **extra: Any) -> dict[str, Any]:
    """A minimal OpenAPI document around `paths`, for the dialect and merging rules."""
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


def op_with_body(schema: Any, *, media: str = "application/json", **extra: Any) -> dict[str, Any]:
    body = {"required": True, "content": {media: {"schema": schema}}}
    return {"post": {"requestBody": body, "responses": {"204": {"description": "ok"}}, **extra}}


# --- every real document -------------------------------------------------------------------

REAL = {
    "oai-v3.0-petstore.yaml": ["listPets", "createPets", "showPetById"],
    "oai-v3.0-petstore-expanded.yaml": ["findPets", "addPet", "find_pet_by_id", "deletePet"],
    "oai-v3.0-uspto.yaml": ["list-data-sets", "list-searchable-fields", "perform-search"],
    "oai-v3.0-api-with-examples.yaml": ["listVersionsv2", "getVersionDetailsv2"],
    "oai-v3.0-callback-example.yaml": ["post_streams"],
    "oai-v3.1-webhook-example.yaml": ["listPets"],
    "oai-v2.0-uber.json": [
        "get_products",
        "get_estimates_price",
        "get_estimates_time",
        "get_me",
        "get_history",
    ],
    "openapi-spec-validator-v3.1-petstore.yaml": ["listPets", "createPets", "showPetById"],
    "apis-guru-v3.0-apis.guru.yaml": [
        "listAPIs",
        "getMetrics",
        "getProviders",
        "getAPI",
        "getServiceAPI",
        "getProvider",
        "getServices",
    ],
    "fastify-openapi-glue-v3.0-recursive.json": ["postRecursive"],
    "fastify-openapi-glue-v3.1-recursive3.yaml": ["getTree", "getForest"],
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_document_loads_one_valid_tool_per_operation(name: str) -> None:
    catalog = load(name)
    assert catalog.kind == "openapi"
    assert [t.name for t in catalog.tools] == REAL[name]
    for t in catalog.tools:
        Draft202012Validator.check_schema(t.parameters)
        if t.response is not None:
            Draft202012Validator.check_schema(t.response)
        assert t.parameters["type"] == "object"
        assert t.source is not None and t.source.kind == "openapi"
        assert t.source.document == str(DATA / name)
        assert t.source.place is not None and t.source.place.startswith("/paths/")
        assert t.description
        assert set(places(t)) == set(t.parameters["properties"])


def test_swagger_codegen_petstore_has_twenty_operations() -> None:
    catalog = load("swagger-codegen-v2.0-petstore.yaml")
    assert len(catalog.tools) == 20
    assert catalog.title == "Swagger Petstore"
    assert catalog.tools[0].name == "addPet"  # document order: post before put


def test_largest_document_loads_well_under_a_second() -> None:
    documents = [p for p in DATA.iterdir() if p.suffix in (".json", ".yaml")]
    largest = max(documents, key=lambda p: p.stat().st_size)
    assert largest.name == "swagger-codegen-v2.0-petstore.yaml"
    load_catalog(largest)
    started = time.perf_counter()
    load_catalog(largest)
    assert time.perf_counter() - started < 0.5


# --- OpenAPI 3.0 ---------------------------------------------------------------------------


def test_petstore_parameters_response_and_binding() -> None:
    catalog = load("oai-v3.0-petstore.yaml")
    list_pets = tool(catalog, "listPets")
    assert list_pets.description == "List all pets"
    assert list_pets.parameters == {
        "type": "object",
        "properties": {
            "limit": {
                "type": "integer",
                "format": "int32",
                "description": "How many items to return at one time (max 100)",
            }
        },
    }
    assert list_pets.response is not None
    assert list_pets.response["type"] == "array"
    assert list_pets.response["items"]["required"] == ["id", "name"]
    assert list_pets.source is not None and list_pets.source.http is not None
    http = list_pets.source.http
    assert (http.method, http.path, http.servers) == (
        "GET",
        "/pets",
        ["http://petstore.swagger.io/v1"],
    )
    assert http.in_ == {"limit": "query"}
    assert list_pets.source.place == "/paths/~1pets/get"

    show = tool(catalog, "showPetById")
    assert show.parameters["required"] == ["petId"]
    assert places(show) == {"petId": "path"}
    assert show.source is not None and show.source.place == "/paths/~1pets~1{petId}/get"
    # 201 has no content; `default` (the error) is not used when a 2xx exists.
    assert tool(catalog, "createPets").response is None


def test_object_body_properties_become_arguments() -> None:
    add = tool(load("oai-v3.0-petstore-expanded.yaml"), "addPet")
    assert add.parameters == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "tag": {"type": "string"}},
        "required": ["name"],
    }
    assert add.source is not None and add.source.http is not None
    assert add.source.http.in_ == {"name": "body", "tag": "body"}
    assert add.source.http.body_argument is None
    assert add.source.http.content_type == "application/json"
    assert add.description == "Creates a new pet in the store.  Duplicates are allowed"
    assert add.response is not None and len(add.response["allOf"]) == 2


def test_operation_id_with_spaces_is_sanitised() -> None:
    found = tool(load("oai-v3.0-petstore-expanded.yaml"), "find_pet_by_id")
    assert found.parameters["required"] == ["id"]
    assert tool(load("oai-v3.0-petstore-expanded.yaml"), "deletePet").response is None


def test_optional_form_body_and_server_variables() -> None:
    search = tool(load("oai-v3.0-uspto.yaml"), "perform-search")
    assert list(search.parameters["properties"]) == [
        "version",
        "dataset",
        "criteria",
        "start",
        "rows",
    ]
    # The body is optional, so its own `required: [criteria]` does not make an argument required.
    assert search.parameters["required"] == ["version", "dataset"]
    assert search.parameters["properties"]["criteria"]["default"] == "*:*"
    assert search.source is not None and search.source.http is not None
    assert search.source.http.content_type == "application/x-www-form-urlencoded"
    assert search.source.http.servers == ["https://developer.uspto.gov/ds-api"]
    fields = tool(load("oai-v3.0-uspto.yaml"), "list-searchable-fields")
    assert fields.parameters["properties"]["dataset"]["examples"] == ["oa_citations"]


def test_invalid_examples_do_not_reject_the_document() -> None:
    # This revision writes `examples` as lists, which the OpenAPI 3.0 schema forbids.
    catalog = load("oai-v3.0-api-with-examples.yaml")
    assert [t.response for t in catalog.tools] == [None, None]


def test_callbacks_are_skipped_even_with_a_dangling_reference() -> None:
    streams = tool(load("oai-v3.0-callback-example.yaml"), "post_streams")
    assert streams.parameters["required"] == ["callbackUrl"]
    assert streams.parameters["properties"]["callbackUrl"]["examples"] == [
        "https://tonys-server.com"
    ]
    assert streams.response is not None
    assert streams.response["properties"]["subscriptionId"]["examples"] == [
        "2531329f-fb09-4ef7-887e-84e648214436"
    ]


def test_parameter_references_and_yaml_dates() -> None:
    catalog = load("apis-guru-v3.0-apis.guru.yaml")
    service_api = tool(catalog, "getServiceAPI")
    assert service_api.parameters["required"] == ["provider", "service", "api"]
    assert service_api.parameters["properties"]["provider"] == {
        "maxLength": 255,
        "minLength": 1,
        "type": "string",
        "examples": ["apis.guru"],
    }
    assert places(service_api) == {"provider": "path", "service": "path", "api": "path"}
    list_apis = tool(catalog, "listAPIs")
    assert list_apis.response is not None
    example = list_apis.response["examples"][0]["googleapis.com:drive"]
    # Timestamps stay the text they were written as (YAML would make them datetimes).
    assert example["added"] == "2015-02-22T20:00:45.000Z"


# --- OpenAPI 3.1 ---------------------------------------------------------------------------


def test_path_item_reference_and_property_named_ref() -> None:
    catalog = load("openapi-spec-validator-v3.1-petstore.yaml")
    show = tool(catalog, "showPetById")
    assert show.source is not None and show.source.place == "/paths/~1pets~1{petId}/get"
    assert show.parameters["required"] == ["petId"]
    assert show.response is not None
    assert show.response["items"]["properties"]["$ref"] == {"type": "string"}


def test_webhooks_are_not_tools() -> None:
    catalog = load("oai-v3.1-webhook-example.yaml")
    assert [t.name for t in catalog.tools] == ["listPets"]


# --- Swagger 2.0 ---------------------------------------------------------------------------


def test_swagger2_parameters_become_schemas() -> None:
    catalog = load("swagger-codegen-v2.0-petstore.yaml")
    by_status = tool(catalog, "findPetsByStatus")
    assert by_status.parameters["properties"]["status"] == {
        "type": "array",
        "items": {
            "type": "string",
            "enum": ["available", "pending", "sold"],
            "default": "available",
        },
        "description": "Status values that need to be considered for filter",
    }
    order = tool(catalog, "getOrderById")
    assert order.parameters["properties"]["orderId"]["maximum"] == 5
    assert order.source is not None and order.source.http is not None
    assert order.source.http.servers == ["http://petstore.swagger.io/v2"]
    delete = tool(catalog, "deletePet")
    assert places(delete) == {"api_key": "header", "petId": "path"}
    assert delete.parameters["required"] == ["petId"]


def test_swagger2_form_data_and_file() -> None:
    catalog = load("swagger-codegen-v2.0-petstore.yaml")
    upload = tool(catalog, "uploadFile")
    assert upload.parameters["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": "file to upload",
    }
    assert places(upload) == {"petId": "path", "additionalMetadata": "body", "file": "body"}
    assert upload.source is not None and upload.source.http is not None
    assert upload.source.http.content_type == "multipart/form-data"
    form = tool(catalog, "updatePetWithForm")
    assert form.source is not None and form.source.http is not None
    assert form.source.http.content_type == "application/x-www-form-urlencoded"
    assert form.parameters["required"] == ["petId"]


def test_swagger2_body_object_is_merged_and_cleaned() -> None:
    add = tool(load("swagger-codegen-v2.0-petstore.yaml"), "addPet")
    assert add.parameters["required"] == ["name", "photoUrls"]
    assert add.parameters["properties"]["name"] == {"type": "string", "examples": ["doggie"]}
    assert add.parameters["properties"]["category"]["title"] == "Pet category"
    assert b'"xml"' not in orjson.dumps(add.parameters)
    assert set(places(add).values()) == {"body"}


def test_body_that_collides_with_a_parameter_stays_whole() -> None:
    update = tool(load("swagger-codegen-v2.0-petstore.yaml"), "updateUser")
    # The User body has a `username` property, like the path parameter.
    assert update.parameters["required"] == ["username", "body"]
    assert update.parameters["properties"]["body"]["properties"]["username"] == {"type": "string"}
    assert update.source is not None and update.source.http is not None
    assert update.source.http.in_ == {"username": "path", "body": "body"}
    assert update.source.http.body_argument == "body"


def test_array_body_goes_under_one_argument() -> None:
    create = tool(load("swagger-codegen-v2.0-petstore.yaml"), "createUsersWithArrayInput")
    body = create.parameters["properties"]["body"]
    assert body["type"] == "array" and body["description"] == "List of user object"
    assert create.source is not None and create.source.http is not None
    assert create.source.http.body_argument == "body"
    # Only `default` without a schema: no response schema.
    assert create.response is None


def test_swagger2_names_from_method_and_path_and_tuple_items() -> None:
    catalog = load("oai-v2.0-uber.json")
    products = tool(catalog, "get_products")
    assert products.parameters["required"] == ["latitude", "longitude"]
    assert products.parameters["properties"]["latitude"]["format"] == "double"
    assert products.description.startswith("Product Types\n\nThe Products endpoint")
    assert products.source is not None and products.source.http is not None
    assert products.source.http.servers == ["https://api.uber.com/v1"]
    history = tool(catalog, "get_history")
    assert history.response is not None
    assert history.response["properties"]["history"]["prefixItems"][0]["properties"] == {
        "uuid": {"type": "string", "description": "Unique identifier for the activity"}
    }


# --- circular references -------------------------------------------------------------------


def test_circular_body_keeps_a_definition_and_validates_nested_data() -> None:
    recursive = tool(load("fastify-openapi-glue-v3.0-recursive.json"), "postRecursive")
    params = recursive.parameters
    assert params["required"] == ["str1"]
    assert params["properties"]["objRef"] == {"$ref": "#/$defs/bodyObject"}
    assert params["properties"]["arrRef"]["items"] == {"$ref": "#/$defs/bodyObject"}
    # A pointer that passes through another $ref is followed.
    assert params["properties"]["refStr"] == {"type": "string"}
    assert params["$defs"]["bodyObject"]["additionalProperties"] is False
    validator = Draft202012Validator(params)
    validator.validate({"str1": "a", "objRef": {"str1": "b", "arrRef": [{"str1": "c"}]}})
    with pytest.raises(ValidationError):
        validator.validate({"str1": "a", "objRef": {"arrRef": [{"str1": 1}]}})
    assert recursive.response is not None
    assert recursive.response["$ref"] == "#/$defs/bodyObject"
    Draft202012Validator(recursive.response).validate({"str1": "x", "objRef": {"str1": "y"}})


def test_circular_schema_in_31_gives_each_tool_its_own_definitions() -> None:
    catalog = load("fastify-openapi-glue-v3.1-recursive3.yaml")
    tree, forest = tool(catalog, "getTree"), tool(catalog, "getForest")
    assert tree.response is not None and forest.response is not None
    assert tree.response["allOf"][1] == {"$ref": "#/$defs/TreeNode"}
    assert forest.response["items"] == {"$ref": "#/$defs/TreeNode"}
    for response in (tree.response, forest.response):
        node = response["$defs"]["TreeNode"]
        assert node["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    Draft202012Validator(forest.response).validate([{"id": "a", "children": [{"id": "b"}]}])
    with pytest.raises(ValidationError):
        Draft202012Validator(forest.response).validate([{"id": "a", "children": [{}]}])


def test_mutually_recursive_schemas_terminate() -> None:
    document = v3(
        {
            "/a": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/A"}}
                            },
                        }
                    }
                }
            }
        },
        components={
            "schemas": {
                "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
                "B": {"type": "array", "items": {"$ref": "#/components/schemas/A"}},
            }
        },
    )
    response = load_dict(document).tools[0].response
    assert response == {
        "$ref": "#/$defs/A",
        "$defs": {
            "A": {
                "type": "object",
                "properties": {"b": {"type": "array", "items": {"$ref": "#/$defs/A"}}},
            }
        },
    }


# --- schema dialects -----------------------------------------------------------------------


def first_argument(document: dict[str, Any]) -> Any:
    params = load_dict(document).tools[0].parameters
    return next(iter(params["properties"].values()))


def query(schema: dict[str, Any], version: str = "3.0.3") -> dict[str, Any]:
    parameter = {"name": "q", "in": "query", "schema": schema}
    get = {"parameters": [parameter], "responses": {"200": {"description": "ok"}}}
    return v3({"/s": {"get": get}}, version)


def test_nullable_adds_null_to_type_and_enum() -> None:
    schema = {"type": "string", "nullable": True, "enum": ["a", "b"]}
    assert first_argument(query(schema)) == {"type": ["string", "null"], "enum": ["a", "b", None]}


def test_nullable_without_type_accepts_null_besides() -> None:
    document = query({"nullable": True, "allOf": [{"$ref": "#/components/schemas/S"}]})
    document["components"] = {"schemas": {"S": {"type": "integer"}}}
    assert first_argument(document) == {
        "anyOf": [{"allOf": [{"type": "integer"}]}, {"type": "null"}]
    }


def test_boolean_exclusive_bounds_become_numbers() -> None:
    schema = {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 10,
        "exclusiveMaximum": False,
    }
    assert first_argument(query(schema)) == {"type": "number", "exclusiveMinimum": 0, "maximum": 10}


def test_openapi_only_keywords_are_dropped_or_renamed() -> None:
    schema = {
        "type": "object",
        "properties": {"x-kind": {"type": "string", "x-internal": True}},
        "discriminator": {"propertyName": "x-kind"},
        "xml": {"name": "Thing"},
        "externalDocs": {"url": "https://example.com"},
        "example": {"x-kind": "a"},
        "x-extension": 1,
    }
    assert first_argument(query(schema)) == {
        "type": "object",
        "properties": {"x-kind": {"type": "string"}},
        "examples": [{"x-kind": "a"}],
    }


def test_openapi_31_schemas_pass_through() -> None:
    schema = {"type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [1]}
    assert first_argument(query(schema, "3.1.0")) == schema


def test_reference_siblings_in_31_apply_and_annotations_overlay() -> None:
    document = query({"$ref": "#/components/schemas/S", "description": "d", "maximum": 9}, "3.1.0")
    document["components"] = {"schemas": {"S": {"type": "integer"}}}
    assert first_argument(document) == {
        "allOf": [{"type": "integer", "description": "d"}, {"maximum": 9}]
    }
    document["openapi"] = "3.0.3"  # 3.0 ignores siblings other than annotations
    assert first_argument(document) == {"type": "integer", "description": "d"}


def test_swagger2_x_nullable() -> None:
    parameter = {"name": "q", "in": "query", "type": "string", "x-nullable": True}
    document = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/s": {"get": {"parameters": [parameter], "responses": {"200": {"description": "ok"}}}}
        },
    }
    assert first_argument(document) == {"type": ["string", "null"]}


# --- arguments -----------------------------------------------------------------------------


def test_operation_parameter_overrides_path_parameter_by_name_and_place() -> None:
    path_level = [
        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
    ]
    op_level = [
        {"name": "limit", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "Accept", "in": "header", "schema": {"type": "string"}},
        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
    ]
    get = {"parameters": op_level, "responses": {"200": {"description": "ok"}}}
    document = v3({"/items/{itemId}": {"parameters": path_level, "get": get}})
    found = load_dict(document).tools[0]
    assert found.name == "get_items_by_itemId"
    assert found.parameters["properties"]["limit"] == {"type": "string"}
    assert found.parameters["required"] == ["limit", "itemId"]
    # Accept is set by the client; the undeclared path variable still becomes an argument.
    assert places(found) == {
        "limit": "query",
        "X-Trace": "header",
        "session": "cookie",
        "itemId": "path",
    }


def test_all_of_body_is_flattened() -> None:
    schema = {"allOf": [{"$ref": "#/components/schemas/Base"}, {"properties": {"extra": {}}}]}
    base = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
    document = v3({"/things": op_with_body(schema)}, components={"schemas": {"Base": base}})
    found = load_dict(document).tools[0]
    assert found.parameters == {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "extra": {}},
        "required": ["id"],
    }


def test_binary_body_is_one_string_argument() -> None:
    schema = {"type": "string", "format": "binary"}
    document = v3({"/upload": op_with_body(schema, media="application/octet-stream")})
    found = load_dict(document).tools[0]
    assert found.parameters == {
        "type": "object",
        "properties": {"body": schema},
        "required": ["body"],
    }
    assert found.source is not None and found.source.http is not None
    assert found.source.http.body_argument == "body"
    assert found.source.http.content_type == "application/octet-stream"


def test_default_response_is_used_only_without_any_2xx() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    content = {"application/json": {"schema": schema}}
    only_default = {"get": {"responses": {"default": {"description": "d", "content": content}}}}
    wildcard = {
        "get": {
            "responses": {
                "2XX": {"description": "s", "content": content},
                "default": {"description": "e", "content": {"application/json": {"schema": {}}}},
            }
        }
    }
    catalog = load_dict(v3({"/a": only_default, "/b": wildcard}))
    assert [t.response for t in catalog.tools] == [schema, schema]
    assert [t.description for t in catalog.tools] == ["GET /a", "GET /b"]


# --- names ---------------------------------------------------------------------------------


def test_missing_operation_id_gives_method_and_path_name() -> None:
    source = text("oai-v3.0-petstore.yaml").replace("      operationId: showPetById\n", "")
    assert [t.name for t in load_text(source).tools] == [
        "listPets",
        "createPets",
        "get_pets_by_petId",
    ]


@pytest.mark.parametrize(
    ("operation_id", "method", "path", "expected"),
    [
        ("find pet by id", "get", "/pets/{id}", "find_pet_by_id"),
        ("2fa/verify", "post", "/2fa", "_2fa_verify"),
        (None, "get", "/specs/{provider}/{api}.json", "get_specs_by_provider_by_api.json"),
        ("", "delete", "/", "delete"),
        ("x" * 200, "get", "/", "x" * 128),
    ],
)
def test_tool_name(operation_id: Any, method: str, path: str, expected: str) -> None:
    assert tool_name(operation_id, method, path) == expected


def test_duplicate_operation_ids_are_reported_with_both_places() -> None:
    source = text("oai-v3.0-petstore.yaml").replace(
        "operationId: createPets", "operationId: listPets"
    )
    error = error_of(source)
    assert error.place == "/paths/~1pets/post"
    assert "duplicate tool name 'listPets' (also at /paths/~1pets/get)" in error.message


# --- detection -----------------------------------------------------------------------------


def test_detects_openapi_and_swagger_documents_only() -> None:
    loader = LOADERS.get("openapi")
    assert loader.detect(parse_document("a.yaml", (DATA / "oai-v3.0-petstore.yaml").read_bytes()))
    assert loader.detect(parse_document("b.json", (DATA / "oai-v2.0-uber.json").read_bytes()))
    assert not loader.detect(parse_document("c.json", b'[{"name": "f"}]'))
    # Declaring a version is enough to be an OpenAPI document; `load` refuses unsupported ones.
    assert loader.detect(parse_document("d.json", b'{"swagger": "1.2"}'))
    assert not loader.detect(parse_document("e.json", b'{"openapi": null, "paths": {}}'))


@pytest.mark.parametrize(
    ("declared", "named"),
    [
        ("openapi: 4.0.0", "/openapi: OpenAPI 4.0.0"),
        ("openapi: 2.0.0", "/openapi: OpenAPI 2.0.0"),
        ('swagger: "1.2"', "/swagger: Swagger 1.2"),
    ],
)
def test_an_unsupported_version_is_named_with_the_supported_ones(declared: str, named: str) -> None:
    error = error_of(f'{declared}\ninfo: {{title: t, version: "1"}}\npaths: {{}}\n', "api.yaml")
    assert str(error) == (
        f"api.yaml: {named} is not supported: ActionForge reads Swagger 2.0 and OpenAPI 3.0.x, "
        "3.1.x and 3.2.x; convert the document to one of them"
    )


@pytest.mark.parametrize("declared", ["3.0.3", "3.1.0", "3.1", 3.0])
def test_supported_versions_load_however_they_are_written(declared: object) -> None:
    document = v3({"/x": {"get": {"responses": {"200": {"description": "ok"}}}}})
    document["openapi"] = declared
    assert [t.name for t in load_dict(document).tools] == ["get_x"]


# --- errors --------------------------------------------------------------------------------


def test_dangling_reference_names_its_place_operation_and_fix() -> None:
    source = text("oai-v3.0-petstore.yaml").replace(
        '$ref: "#/components/schemas/Pet"\n', '$ref: "#/components/schemas/Pett"\n'
    )
    error = error_of(source)
    assert error.document == "derived.yaml"
    assert error.place == "/components/schemas/Pets/items/$ref"
    assert error.message == (
        "$ref '#/components/schemas/Pett' points to nothing in this document "
        "(operation GET /pets); define /components/schemas/Pett or correct the reference"
    )


def test_remote_reference_is_refused() -> None:
    with pytest.raises(CatalogError) as caught:
        load("oai-v2.0-petstore-separate.yaml")
    assert caught.value.place == "/paths/~1pets/get/parameters/0/$ref"
    assert caught.value.message.startswith(
        "$ref 'parameters.yaml#/tagsParam' points outside this document (operation GET /pets); "
        "only local references (starting with '#/') are supported"
    )


def test_remote_looking_reference_suggests_the_local_one() -> None:
    with pytest.raises(CatalogError) as caught:
        load("openapi-spec-validator-v2.0-missing-reference.yaml")
    assert caught.value.place == "/paths/~1pets/get/responses/200/schema/$ref"
    assert caught.value.message.endswith("(did you mean '#/definitions/Pets'?)")


def test_plain_name_fragment_is_refused() -> None:
    document = query({"$ref": "#Pet"}, "3.1.0")
    with pytest.raises(CatalogError) as caught:
        load_dict(document)
    assert caught.value.place == "/paths/~1s/get/parameters/0/schema/$ref"
    assert "plain-name fragment" in caught.value.message
    assert "'#/components/schemas/Name'" in caught.value.message


def test_schema_that_is_only_a_reference_to_itself_is_refused() -> None:
    document = query({"$ref": "#/components/schemas/Loop"}, "3.1.0")
    document["components"] = {"schemas": {"Loop": {"$ref": "#/components/schemas/Loop"}}}
    with pytest.raises(CatalogError) as caught:
        load_dict(document)
    assert caught.value.place == "/paths/~1s/get/parameters/0/schema"
    assert "schema /components/schemas/Loop is only a reference back to itself" in str(caught.value)


def test_parameter_reference_loop_is_refused() -> None:
    get = {"parameters": [{"$ref": "#/components/parameters/P"}], "responses": {}}
    document = v3(
        {"/s": {"get": get}},
        "3.1.0",
        components={"parameters": {"P": {"$ref": "#/components/parameters/P"}}},
    )
    with pytest.raises(CatalogError) as caught:
        load_dict(document)
    assert caught.value.place == "/components/parameters/P"
    assert "$ref loops back to /components/parameters/P (operation GET /s)" in caught.value.message


def test_invalid_parameter_location_is_fatal_with_the_allowed_values() -> None:
    error = error_of(text("oai-v3.0-petstore.yaml").replace("in: query", "in: querystring"))
    assert error.place == "/paths/~1pets/get/parameters/0/in"
    assert error.message == (
        "invalid OpenAPI 3.0 document: 'querystring' is not allowed here; "
        "use one of path, query, header, cookie"
    )


def test_parameter_without_name_is_fatal() -> None:
    source = text("swagger-codegen-v2.0-petstore.yaml").replace(
        "        - name: api_key\n          in: header", "        - in: header"
    )
    error = error_of(source)
    assert error.place == "/paths/~1pet~1{petId}/delete/parameters/0"
    assert error.message == "invalid OpenAPI 2.0 document: 'name' is a required property; add it"


def test_invalid_schema_is_fatal_only_where_an_operation_uses_it() -> None:
    source = text("oai-v3.0-petstore.yaml")
    used = source.replace(
        "        id:\n          type: integer", "        id:\n          type: int"
    )
    error = error_of(used)
    assert error.place == "/components/schemas/Pet/properties/id/type"
    assert error.message.startswith("invalid OpenAPI 3.0 document: 'int' is not allowed here")
    # `Error` is only used by `default` responses, which are not read when a 2xx exists.
    unused = source.replace(
        "        code:\n          type: integer", "        code:\n          type: int"
    )
    assert len(load_text(unused).tools) == 3


def test_a_query_parameter_named_like_a_path_parameter_gets_its_own_argument() -> None:
    operation = {
        "parameters": [
            {"name": "id", "in": "query", "schema": {"type": "integer"}},
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "ok"}},
    }
    paths = {"/items/{id}": {"get": operation}, "/other": {"get": {"responses": {}}}}
    catalog = load_dict(v3(paths))
    assert catalog.warnings == [
        "/paths/~1items~1{id}/get/parameters/0: query parameter 'id' has the same name as a "
        "path parameter (operation GET /items/{id}); its argument is named 'id_query' and is "
        "still sent as query parameter 'id'"
    ]
    found = tool(catalog, "get_items_by_id")
    assert found.parameters["properties"] == {
        "id_query": {"type": "integer"},
        "id": {"type": "string"},
    }
    assert found.parameters["required"] == ["id"]
    assert found.source is not None and found.source.http is not None
    http = found.source.http
    assert http.in_ == {"id_query": "query", "id": "path"}
    assert http.sent_as == {"id_query": "id"}
    assert http.argument_for("query", "id") == "id_query"
    assert http.argument_for("path", "id") == "id"
    assert [t.name for t in catalog.tools] == ["get_items_by_id", "get_other"]


def test_a_route_template_name_clashing_with_a_query_parameter_is_added_as_path() -> None:
    operation = {
        "parameters": [{"name": "id", "in": "query", "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "ok"}},
    }
    found = load_dict(v3({"/items/{id}": {"get": operation}})).tools[0]
    assert found.parameters["properties"] == {
        "id_query": {"type": "integer"},
        "id": {"type": "string"},
    }
    assert found.source is not None and found.source.http is not None
    assert found.source.http.in_ == {"id_query": "query", "id": "path"}


def test_a_header_named_like_a_query_parameter_is_renamed_with_a_warning() -> None:
    source = text("oai-v3.0-petstore.yaml").replace(
        "          required: false\n          schema:\n            type: integer\n",
        "          required: false\n          schema:\n            type: integer\n"
        "        - name: limit\n          in: header\n"
        "          schema:\n            type: string\n",
    )
    catalog = load_text(source)
    assert catalog.warnings == [
        "/paths/~1pets/get/parameters/1: header 'limit' has the same name as a query "
        "parameter (operation GET /pets); its argument is named 'limit_header' and is still "
        "sent as header 'limit'"
    ]
    assert places(tool(catalog, "listPets")) == {"limit": "query", "limit_header": "header"}
    assert load("oai-v3.0-petstore.yaml").warnings == []


def test_document_without_paths_is_refused() -> None:
    source = text("oai-v3.1-webhook-example.yaml")
    webhooks_only = source[: source.index("paths:")] + source[source.index("webhooks:") :]
    error = error_of(webhooks_only)
    assert error.place == "/paths"
    assert error.message == (
        "no operations under paths (webhooks are calls the API makes, not tools); "
        "add a path with at least one operation (get, post, ...)"
    )


def test_document_with_empty_paths_is_refused() -> None:
    with pytest.raises(CatalogError) as caught:
        load_dict(v3({}))
    assert caught.value.place == "/paths"
    assert caught.value.message.startswith("no operations under paths; add a path")


def test_yaml_value_that_json_cannot_hold_is_refused() -> None:
    source = text("oai-v3.0-petstore.yaml").replace(
        "title: Swagger Petstore", "title: !!binary aGVsbG8="
    )
    error = error_of(source)
    assert error.place is None
    assert error.message.startswith("holds a value JSON cannot represent")
    assert error.message.endswith("use plain JSON values only")


def test_loading_a_non_openapi_document_as_openapi_is_refused() -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog_bytes(b'{"title": "f"}', "functions.json", kind="openapi")
    assert caught.value.document == "functions.json"
    assert caught.value.message.startswith("not an OpenAPI document: expected a top-level")
