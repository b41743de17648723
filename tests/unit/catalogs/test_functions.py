"""JSON function lists (OpenAI, xLAM, BFCL) loaded as catalogs, on real public documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from unified.catalogs import load_catalog, load_catalog_bytes
from unified.catalogs.base import parse_document, pick_loader
from unified.catalogs.functions import bfcl_loader, openai_loader, xlam_loader
from unified.errors import CatalogError

DATA = Path(__file__).resolve().parents[2] / "data"
FUNCTIONS = DATA / "functions"
XLAM_ROWS = DATA / "xlam" / "rows_sample.jsonl"


def _load(document: Any, name: str = "tools.json", kind: str | None = None):
    raw = document.encode() if isinstance(document, str) else json.dumps(document).encode()
    return load_catalog_bytes(raw, name, kind=kind)


def _error(document: Any, name: str = "tools.json", kind: str | None = None) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        _load(document, name, kind)
    return caught.value


def _types_in(schema: dict[str, Any]) -> list[Any]:
    """Every "type" declared in a schema and its subschemas."""
    found = [schema["type"]] if "type" in schema else []
    children = list(schema.get("properties", {}).values()) + schema.get("prefixItems", [])
    children += [
        schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)
    ]
    for child in children:
        found.extend(_types_in(child))
    return found


# ---- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (FUNCTIONS / "BFCL_v3_simple.json", "bfcl"),
        (FUNCTIONS / "BFCL_v3_multiple.json", "bfcl"),
        (FUNCTIONS / "BFCL_v3_parallel.json", "bfcl"),
        (FUNCTIONS / "BFCL_v3_irrelevance.json", "bfcl"),
        (FUNCTIONS / "openai_cookbook_tools.json", "openai"),
        (FUNCTIONS / "openai_responses_tools.json", "openai"),
        (FUNCTIONS / "xlam_tools.json", "xlam"),
        (XLAM_ROWS, "xlam"),
    ],
)
def test_detection_picks_the_format_of_each_real_document(path: Path, kind: str) -> None:
    doc = parse_document(str(path), path.read_bytes(), suffix=path.suffix)
    assert pick_loader(doc)[0] == kind
    detected = {
        name
        for name, loader in [
            ("openai", openai_loader),
            ("bfcl", bfcl_loader),
            ("xlam", xlam_loader),
        ]
        if loader.detect(doc)
    }
    assert detected == {kind}


def test_function_loaders_leave_openapi_documents_alone() -> None:
    doc = parse_document(
        "api.json", b'{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}'
    )
    assert not any(loader.detect(doc) for loader in (openai_loader, bfcl_loader, xlam_loader))


def test_json_lines_are_parsed_into_rows() -> None:
    doc = parse_document("rows.jsonl", b'{"a": 1}\n\n{"a": 2}\n', suffix=".jsonl")
    assert doc.data == [{"a": 1}, {"a": 2}]


def test_a_broken_json_lines_row_names_its_line() -> None:
    lines = (FUNCTIONS / "BFCL_v3_simple.json").read_text().splitlines()
    broken = "\n".join([lines[0], lines[1][:-5], lines[2]])
    error = _error(broken, "BFCL_v3_simple.json")
    assert error.document == "BFCL_v3_simple.json"
    assert error.place == "line 2"
    assert "not valid JSON Lines" in error.message
    assert "fix the JSON on this line" in error.message


# ---- BFCL ------------------------------------------------------------------------------------


def test_bfcl_simple_rows_give_one_tool_per_function_name() -> None:
    catalog = load_catalog(FUNCTIONS / "BFCL_v3_simple.json")
    assert catalog.kind == "bfcl"
    names = [t.name for t in catalog.tools]
    # 20 rows; calculate_triangle_area (rows 0, 11) and solve_quadratic (rows 5, 6) recur.
    assert len(names) == 18 == len(set(names))
    assert names[:4] == [
        "calculate_triangle_area",
        "math.factorial",
        "math.hypot",
        "algebra.quadratic_roots",
    ]
    first = catalog.tool("calculate_triangle_area")
    assert first is not None and first.source is not None
    assert first.description == "Calculate the area of a triangle given its base and height."
    assert set(first.parameters["properties"]) == {"base", "height", "unit"}
    assert first.source.kind == "bfcl"
    assert first.source.place == "line 1 /function/0"


def test_bfcl_types_are_mapped_to_json_schema() -> None:
    catalog = load_catalog(FUNCTIONS / "BFCL_v3_simple.json")
    hypot = catalog.tool("math.hypot")
    assert hypot is not None
    assert hypot.parameters["type"] == "object"
    assert hypot.parameters["required"] == ["x", "y"]
    assert hypot.parameters["properties"]["z"]["type"] == "integer"
    area = catalog.tool("calculate_area_under_curve")
    assert area is not None
    assert area.parameters["properties"]["interval"] == {
        "type": "array",
        "items": {"type": "number"},
        "description": "An array that defines the interval to calculate the area under the "
        "curve from the start to the end point.",
    }
    derivative = catalog.tool("calculate_derivative")
    assert derivative is not None
    assert derivative.parameters["properties"]["x_value"]["type"] == "number"


def test_bfcl_multiple_maps_tuples_nested_dicts_and_optional_markers() -> None:
    catalog = load_catalog(FUNCTIONS / "BFCL_v3_multiple.json")
    triangle = catalog.tool("triangle_properties.get")
    assert triangle is not None
    assert triangle.parameters["required"] == ["side1", "side2", "side3"]
    get_area = triangle.parameters["properties"]["get_area"]
    assert get_area["type"] == "boolean" and get_area["default"] is True
    assert "optional" not in get_area
    forecast = catalog.tool("weather.get_forecast_by_coordinates")
    assert forecast is not None and forecast.source is not None
    assert forecast.source.place == "line 6 /function/1"
    assert forecast.parameters["properties"]["coordinates"]["type"] == "array"
    assert forecast.parameters["properties"]["coordinates"]["items"] == {"type": "number"}
    by_date = catalog.tool("weather.get_by_city_date")
    assert by_date is not None
    assert by_date.parameters["properties"]["date"]["format"] == "date"
    homes = catalog.tool("realestate.find_properties")
    assert homes is not None
    assert homes.parameters["properties"]["budget"] == {
        "type": "object",
        "properties": {
            "min": {"type": "number", "description": "Minimum budget limit."},
            "max": {"type": "number", "description": "Maximum budget limit."},
        },
        "description": "Budget range for the property.",
    }
    solar = catalog.tool("solarFarm.potential")
    assert solar is not None
    assert solar.parameters["required"] == ["coordinates", "panelArea"]
    assert "month" in solar.parameters["properties"]


def test_bfcl_parallel_and_irrelevance_keep_enums_and_defaults() -> None:
    parallel = load_catalog(FUNCTIONS / "BFCL_v3_parallel.json")
    assert len(parallel.tools) == 20
    movies = parallel.tool("find_movie_showing")
    assert movies is not None
    assert movies.parameters["properties"]["movie"]["items"] == {
        "type": "string",
        "enum": ["Tenet", "No Time To Die"],
    }
    census = parallel.tool("database_us_census.get_population")
    assert census is not None
    assert census.parameters["properties"]["year"] == {
        "type": "integer",
        "description": "Year of the data",
        "default": 2000,
    }
    irrelevance = load_catalog(FUNCTIONS / "BFCL_v3_irrelevance.json")
    assert len(irrelevance.tools) == 20
    primes = irrelevance.tool("prime_numbers_in_range")
    assert primes is not None
    assert primes.parameters["properties"]["return_format"]["enum"] == ["array", "string"]
    assert primes.parameters["required"] == ["start", "end"]


@pytest.mark.parametrize("name", ["simple", "multiple", "parallel", "irrelevance"])
def test_every_bfcl_tool_is_draft_2020_12_with_no_bfcl_type_left(name: str) -> None:
    catalog = load_catalog(FUNCTIONS / f"BFCL_v3_{name}.json")
    allowed = {"object", "array", "string", "number", "integer", "boolean", "null"}
    for tool in catalog.tools:
        Draft202012Validator.check_schema(tool.parameters)
        for declared in _types_in(tool.parameters):
            assert declared in allowed, (tool.name, declared)


def test_bfcl_any_removes_the_type_constraint() -> None:
    catalog = _load(
        [
            {
                "name": "store",
                "parameters": {
                    "type": "dict",
                    "properties": {"value": {"type": "any", "description": "Anything."}},
                    "required": ["value"],
                },
            }
        ]
    )
    assert catalog.kind == "bfcl"
    assert catalog.tools[0].parameters["properties"]["value"] == {"description": "Anything."}


# ---- OpenAI ----------------------------------------------------------------------------------


def test_openai_cookbook_tools_keep_their_schema() -> None:
    path = FUNCTIONS / "openai_cookbook_tools.json"
    catalog = load_catalog(path)
    original = json.loads(path.read_text())
    assert catalog.kind == "openai"
    assert [t.name for t in catalog.tools] == ["get_current_weather", "get_n_day_weather_forecast"]
    forecast = catalog.tools[1]
    assert forecast.parameters == original[1]["function"]["parameters"]
    assert forecast.parameters["required"] == ["location", "format", "num_days"]
    assert forecast.description == "Get an N-day weather forecast"
    assert forecast.source is not None and forecast.source.place == "/1"
    assert forecast.openai() == original[1]


def test_openai_responses_api_tools_are_read() -> None:
    catalog = load_catalog(FUNCTIONS / "openai_responses_tools.json")
    assert [t.name for t in catalog.tools] == [
        "check_availability",
        "create_reservation",
        "cancel_reservation",
    ]
    reservation = catalog.tools[1]
    assert reservation.parameters["required"] == ["guest_name", "date", "time", "party_size"]
    assert reservation.parameters["properties"]["party_size"]["type"] == "integer"


def test_openai_wrapper_single_object_and_bare_functions() -> None:
    tools = json.loads((FUNCTIONS / "openai_cookbook_tools.json").read_text())
    wrapped = _load({"tools": tools})
    assert wrapped.kind == "openai"
    assert wrapped.tools[1].source is not None
    assert wrapped.tools[1].source.place == "/tools/1"
    single = _load(tools[0])
    assert [t.name for t in single.tools] == ["get_current_weather"]
    bare = _load([t["function"] for t in tools])
    assert bare.kind == "openai"
    assert bare.tools[0].parameters == tools[0]["function"]["parameters"]
    no_arguments = _load([{"type": "function", "function": {"name": "get_time"}}])
    assert no_arguments.tools[0].parameters == {"type": "object", "properties": {}}


# ---- xLAM ------------------------------------------------------------------------------------


def test_xlam_tool_list_maps_python_types_and_defaults() -> None:
    catalog = load_catalog(FUNCTIONS / "xlam_tools.json")
    assert catalog.kind == "xlam"
    assert [t.name for t in catalog.tools] == ["get_id", "search_torrents", "basic_info"]
    torrents = catalog.tools[1]
    assert torrents.source is not None and torrents.source.place == "/1"
    assert torrents.parameters == {
        "type": "object",
        "properties": {
            "keywords": {
                "type": "string",
                "description": "Keywords to search for torrents.",
                "default": "Meg 2 The Trench",
            },
            "quantity": {
                "type": "integer",
                "description": "Number of torrent results to return. Maximum value is 40.",
                "default": "40",
            },
            "page": {
                "type": "integer",
                "description": "Page number for paginated results. Defaults to 1.",
                "default": "1",
            },
        },
        "required": [],
    }


def test_xlam_rows_collect_the_tools_of_every_row() -> None:
    catalog = load_catalog(XLAM_ROWS)
    assert catalog.kind == "xlam"
    assert len(catalog.tools) == 15
    peak = catalog.tool("find_peak_element")
    assert peak is not None and peak.source is not None
    assert peak.source.place == "line 7 /tools/0"
    assert peak.parameters["required"] == ["nums"]
    assert peak.parameters["properties"]["nums"] == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "The list of integers.",
    }
    split = catalog.tool("split_list")
    assert split is not None
    assert split.parameters["properties"]["lst"]["type"] == "array"
    assert split.parameters["required"] == ["lst", "chunk_size"]
    product = catalog.tool("product_id")
    assert product is not None
    assert product.parameters["properties"]["locale"]["type"] == "string"
    assert product.parameters["required"] == []


@pytest.mark.parametrize(
    ("declared", "schema", "required"),
    [
        ("str", {"type": "string"}, True),
        ("int", {"type": "integer"}, True),
        ("float", {"type": "number"}, True),
        ("bool", {"type": "boolean"}, True),
        ("list", {"type": "array"}, True),
        ("dict", {"type": "object"}, True),
        ("List[str]", {"type": "array", "items": {"type": "string"}}, True),
        ("Optional[int]", {"type": "integer"}, False),
        ("str, optional", {"type": "string"}, False),
        ("Union[int, str]", {"type": ["integer", "string"]}, True),
        ("Dict[str, Any]", {"type": "object"}, True),
        ("Dict[str, int]", {"type": "object", "additionalProperties": {"type": "integer"}}, True),
        (
            "Tuple[int, int]",
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "integer"}],
                "minItems": 2,
                "maxItems": 2,
            },
            True,
        ),
        ("Callable[[float], float]", {"type": "string"}, True),
        ("Any", {}, True),
        ("array", {"type": "array"}, True),
        ("object", {"type": "object"}, True),
        (
            "List[Dict[str, float]]",
            {
                "type": "array",
                "items": {"type": "object", "additionalProperties": {"type": "number"}},
            },
            True,
        ),
        ("GeoPoint", {}, True),
    ],
)
def test_xlam_type_strings(declared: str, schema: dict[str, Any], required: bool) -> None:
    catalog = _load([{"name": "f", "parameters": {"x": {"type": declared, "description": "d"}}}])
    assert catalog.tools[0].parameters["properties"]["x"] == {**schema, "description": "d"}
    assert catalog.tools[0].parameters["required"] == (["x"] if required else [])


def test_xlam_explicit_required_and_optional_flags_win() -> None:
    catalog = _load(
        [
            {
                "name": "f",
                "parameters": {
                    "a": {"type": "str", "required": False},
                    "b": {"type": "str", "optional": True},
                    "c": {"type": "Optional[str]", "required": True},
                },
            }
        ]
    )
    assert catalog.tools[0].parameters["required"] == ["c"]


# ---- errors ----------------------------------------------------------------------------------


def test_an_entry_that_is_not_an_object() -> None:
    error = _error([{"type": "function", "function": {"name": "a"}}, "get_weather"])
    assert (error.document, error.place) == ("tools.json", "/1")
    assert "entry is a string, not an object" in error.message
    assert "write each function as a JSON object" in error.message


def test_a_function_without_a_name() -> None:
    error = _error([{"type": "function", "function": {"description": "d"}}])
    assert error.place == "/0/function"
    assert "has no 'name'; add the function's name" in error.message
    xlam = _error([{"description": "d", "parameters": {"a": {"type": "str"}}}], "x.json")
    assert (xlam.document, xlam.place) == ("x.json", "/0")
    assert "has no 'name'" in xlam.message


def test_a_name_that_is_not_a_tool_name() -> None:
    error = _error([{"type": "function", "function": {"name": "get weather"}}])
    assert error.place == "/0/function/name"
    assert "'get weather' is not allowed" in error.message
    assert "rename the function" in error.message


def test_parameters_that_are_not_an_object() -> None:
    error = _error(
        [{"type": "function", "function": {"name": "f", "parameters": ["city"]}}], kind="openai"
    )
    assert error.place == "/0/function/parameters"
    assert "'parameters' of 'f' must be an object, got a list" in error.message
    assert "describe the arguments as a JSON object" in error.message


def test_a_description_that_is_not_text() -> None:
    error = _error([{"name": "f", "description": 3, "parameters": {"type": "object"}}])
    assert error.place == "/0/description"
    assert "'description' of 'f' must be a string, got a number" in error.message


def test_an_xlam_type_that_is_not_a_type() -> None:
    error = _error([{"name": "f", "parameters": {"items": {"type": "List[str"}}}], "x.json")
    assert (error.document, error.place) == ("x.json", "/0/parameters/items/type")
    assert "'List[str' is not a type expression" in error.message
    assert "write a Python type such as str" in error.message
    not_text = _error([{"name": "f", "parameters": {"n": {"type": 5}}}], kind="xlam")
    assert not_text.place == "/0/parameters/n/type"
    assert "'type' must be a string" in not_text.message


def test_an_xlam_argument_that_is_not_an_object() -> None:
    error = _error([{"name": "f", "parameters": {"city": "str"}}], kind="xlam")
    assert error.place == "/0/parameters/city"
    assert "argument 'city' of 'f' must be an object" in error.message


def test_an_xlam_row_whose_tools_do_not_parse() -> None:
    row = {"id": 1, "query": "q", "answers": "[]", "tools": '[{"name": '}
    error = _error([row, row], "rows.json")
    assert error.place == "/0/tools"
    assert "'tools' is a JSON string that does not parse" in error.message


def test_a_bfcl_type_that_cannot_be_mapped() -> None:
    error = _error(
        [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "widget"}}}}]
    )
    assert error.place == "/0/parameters/properties/x/type"
    assert "type 'widget' is not a BFCL type" in error.message
    assert "use one of dict, integer, float" in error.message


def test_required_naming_a_missing_property() -> None:
    error = _error(
        [
            {
                "name": "f",
                "parameters": {
                    "type": "dict",
                    "properties": {"a": {"type": "string"}},
                    "required": ["a", "b"],
                },
            }
        ],
        "bfcl.json",
    )
    assert (error.document, error.place) == ("bfcl.json", "/0")
    assert "parameters /required names 'b', which is not among the properties" in error.message
    assert "add the property or remove it from required" in error.message


def test_parameters_that_are_not_valid_json_schema() -> None:
    error = _error(
        [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"a": {"type": "strng"}}},
                },
            }
        ]
    )
    assert error.place == "/0"
    assert "tool 'f': parameters is not valid JSON Schema at /properties/a/type" in error.message


def test_duplicate_names_in_a_plain_list() -> None:
    tool = {"type": "function", "function": {"name": "f"}}
    error = _error([tool, tool])
    assert error.place == "/1"
    assert "duplicate tool name 'f' (also at /0); give each tool a unique name" in error.message


def test_a_document_with_no_functions() -> None:
    error = _error({"tools": []}, kind="openai")
    assert error.place is None
    assert "no functions found; add at least one openai function" in error.message


def test_older_bfcl_rows_with_one_function_object() -> None:
    rows = [
        {"id": "a", "question": "q", "function": {"name": "f", "parameters": {"type": "dict"}}},
        {"id": "b", "question": "q", "function": {"name": "g", "parameters": {"type": "dict"}}},
    ]
    text = "\n".join(json.dumps(row) for row in rows)
    catalog = _load(text, "gorilla_openfunctions_v1_test_simple.json")
    assert catalog.kind == "bfcl"
    assert [(t.name, t.source.place if t.source else None) for t in catalog.tools] == [
        ("f", "line 1 /function"),
        ("g", "line 2 /function"),
    ]


def test_xlam_rows_whose_tools_are_already_a_list() -> None:
    tools = json.loads((FUNCTIONS / "xlam_tools.json").read_text())
    catalog = _load([{"id": 6, "query": "q", "answers": [], "tools": tools}])
    assert catalog.kind == "xlam"
    assert [t.name for t in catalog.tools] == ["get_id", "search_torrents", "basic_info"]
    assert catalog.tools[2].source is not None
    assert catalog.tools[2].source.place == "/0/tools/2"
