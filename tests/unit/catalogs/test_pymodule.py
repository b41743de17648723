"""Python modules of functions loaded as catalogs from their source, never run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from unified.catalogs import load_catalog, load_catalog_bytes
from unified.catalogs.base import Catalog, parse_document, pick_loader
from unified.errors import CatalogError
from unified.model import Tool

PYTHON = Path(__file__).resolve().parents[2] / "data" / "python"
BFCL_MODULE = PYTHON / "executable_python_function.py"
HINTS_MODULE = PYTHON / "hints_and_docstrings.py"


def _tool(catalog: Catalog, name: str) -> Tool:
    tool = catalog.tool(name)
    assert tool is not None, name
    return tool


def _properties(catalog: Catalog, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = _tool(catalog, name).parameters["properties"]
    return properties


def _error(source: str, name: str = "tools.py") -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        load_catalog_bytes(source.encode(), name)
    return caught.value


@pytest.fixture(scope="module")
def hints() -> Catalog:
    return load_catalog(HINTS_MODULE)


def test_a_py_file_is_detected_as_python() -> None:
    doc = parse_document(str(HINTS_MODULE), HINTS_MODULE.read_bytes(), suffix=".py")
    assert pick_loader(doc)[0] == "python"


# ---- a real module: BFCL's executable functions --------------------------------------------------


def test_real_module_loads_without_running_its_top_level_code() -> None:
    # At import the module imports an uninstalled package and may raise for missing API keys.
    catalog = load_catalog(BFCL_MODULE)
    assert catalog.kind == "python"
    assert len(catalog.tools) == 32
    assert "executable_python_function" not in sys.modules
    triangle = _tool(catalog, "calculate_triangle_area")
    assert triangle.description == "Calculates the area of a triangle."
    assert triangle.parameters == {
        "type": "object",
        "properties": {
            "base": {"type": "integer", "description": "The base of the triangle."},
            "height": {"type": "integer", "description": "The height of the triangle."},
        },
        "required": ["base", "height"],
    }
    assert triangle.source is not None
    assert triangle.source.kind == "python"
    assert triangle.source.document == str(BFCL_MODULE)
    assert triangle.source.place == "function calculate_triangle_area (line 17)"
    assert triangle.source.callable == "executable_python_function:calculate_triangle_area"


def test_real_module_types_come_from_docstrings() -> None:
    catalog = load_catalog(BFCL_MODULE)
    assert _properties(catalog, "get_distance")["pointA"]["type"] == "array"  # "tuple"
    assert _properties(catalog, "mat_mul")["matA"]["type"] == "array"  # "list"
    assert _properties(catalog, "estimate_derivative")["function"]["type"] == "string"
    sort = _tool(catalog, "sort_array")
    assert sort.parameters["required"] == ["array"]
    assert sort.parameters["properties"]["reverse"] == {
        "type": "boolean",  # "optional bool"
        "description": "Whether to sort the array in reverse order, i.e., descending order.",
        "default": False,
    }
    fibonacci = _tool(catalog, "get_fibonacci_number")
    assert fibonacci.response == {"type": "integer", "description": "The nth Fibonacci number."}


def test_real_module_sections_without_indentation_are_read() -> None:
    catalog = load_catalog(BFCL_MODULE)
    weather = _tool(catalog, "get_weather_data")
    assert weather.parameters["properties"]["coordinates"] == {
        "type": "array",
        "description": "The latitude of the location.",
    }
    assert weather.response == {
        "type": "number",
        "description": "The current temperature in the coordinates you've asked for",
    }
    currency = _tool(catalog, "convert_currency")
    assert currency.parameters["properties"]["amount"]["type"] == "number"
    assert currency.parameters["required"] == ["amount", "from_currency", "to_currency"]


# ---- the module written for these tests: every docstring style and hint --------------------------


def test_public_top_level_functions_only(hints: Catalog) -> None:
    assert [t.name for t in hints.tools] == [
        "search_flights",
        "summarize_scores",
        "create_ticket",
        "legacy_lookup",
        "convert",
        "merge_maps",
        "categorize",
        "fetch_page",
        "clamp",
        "scale",
    ]


def test_loading_never_runs_the_module(hints: Catalog) -> None:
    assert not Path(str(HINTS_MODULE) + ".executed").exists()
    assert "hints_and_docstrings" not in sys.modules
    assert "a_package_that_is_not_installed" not in sys.modules


def test_a_module_that_raises_and_writes_files_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    module = tmp_path / "side_effects.py"
    module.write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "raise RuntimeError('executed')\n"
        "def ping(host: str) -> bool:\n"
        "    return True\n"
    )
    catalog = load_catalog(module)
    assert [t.name for t in catalog.tools] == ["ping"]
    assert catalog.tools[0].response == {"type": "boolean"}
    assert not marker.exists()


def test_google_docstring_and_scalar_hints(hints: Catalog) -> None:
    flights = _tool(hints, "search_flights")
    assert flights.description == (
        "Search one-way flights between two airports.\n\nResults are sorted by price."
    )
    properties = flights.parameters["properties"]
    assert flights.parameters["required"] == ["origin", "destination"]
    assert properties["origin"] == {
        "type": "string",
        "description": "IATA code of the departure airport.",
    }
    assert properties["passengers"] == {
        "type": "integer",
        "description": "How many seats to book.",
        "default": 1,
    }
    assert properties["max_price"]["type"] == ["number", "null"]  # float | None
    assert properties["nonstop"]["type"] == "boolean"
    assert properties["cabin"]["enum"] == ["economy", "business"]  # Literal
    assert properties["cabin"]["type"] == "string"
    assert properties["airlines"]["items"] == {"type": "string"}  # keyword-only
    assert properties["depart_after"]["format"] == "date"
    assert flights.response == {
        "type": "array",
        "items": {"type": "object"},
        "description": "The matching flights, cheapest first.",
    }


def test_numpy_docstring_and_container_hints(hints: Catalog) -> None:
    scores = _tool(hints, "summarize_scores")
    properties = scores.parameters["properties"]
    assert scores.description == "Summarize a list of scores."
    assert properties["scores"] == {
        "type": "array",
        "items": {"type": "number"},
        "description": "The scores to summarize.",
    }
    assert properties["weights"]["type"] == ["object", "null"]  # Optional[Dict[str, float]]
    assert properties["weights"]["additionalProperties"] == {"type": "number"}
    assert properties["weights"]["description"] == "Weight of each score's source."
    assert properties["bounds"]["prefixItems"] == [{"type": "number"}, {"type": "number"}]
    assert properties["bounds"]["default"] == [0.0, 1.0]  # a tuple default becomes a list
    assert properties["tags"]["uniqueItems"] is True
    assert "default" not in properties["tags"]  # frozenset() is a call, not a literal
    assert properties["ids"] == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "Identifiers of the scored items.",
        "default": [],
    }
    assert scores.parameters["required"] == ["scores"]
    assert scores.response == {
        "type": "object",
        "additionalProperties": {"type": "number"},
        "description": "Mean, minimum and maximum.",
    }


def test_rest_docstring_and_classes_of_the_module(hints: Catalog) -> None:
    ticket = _tool(hints, "create_ticket")
    properties = ticket.parameters["properties"]
    assert ticket.description == "Open a support ticket."
    assert list(properties) == ["title", "priority", "assignee", "labels", "extra"]  # no *args
    assert ticket.parameters["required"] == ["title", "priority"]
    assert properties["priority"] == {
        "type": "string",
        "enum": ["low", "high"],
        "description": "How urgent the ticket is.",
    }
    assert properties["assignee"] == {
        "type": ["object", "null"],
        "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
        "required": ["name"],
        "description": "Who should handle it.",
        "default": None,
    }
    assert properties["labels"]["default"] == []
    assert properties["extra"] == {
        "type": "object",
        "description": "Any other fields for the tracker.",
        "default": {},
    }
    assert ticket.response is not None
    assert ticket.response["required"] == ["title", "priority"]  # the dataclass's fields
    assert ticket.response["description"] == "The created ticket."


def test_unannotated_parameters_take_the_docstring_type(hints: Catalog) -> None:
    lookup = _tool(hints, "legacy_lookup")
    assert lookup.parameters == {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "The product code."},
            "retries": {"type": "integer", "description": "How many times to retry.", "default": 3},
            "region": {"description": "Data-centre region."},
        },
        "required": ["code"],
    }


def test_unions_forward_references_and_nested_generics(hints: Catalog) -> None:
    convert = _tool(hints, "convert")
    assert convert.parameters["properties"]["value"]["type"] == ["integer", "string"]
    assert convert.parameters["properties"]["unit"]["type"] == ["string", "null"]
    assert convert.response == {"type": "number"}  # from :rtype:
    merge = _tool(hints, "merge_maps")
    assert merge.parameters["properties"]["maps"]["items"] == {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "integer"}},
    }
    assert merge.parameters["properties"]["strategy"] == {
        "description": "How to merge clashing keys.",
        "default": None,
    }


def test_typed_dicts_including_a_self_referencing_one(hints: Catalog) -> None:
    root = _properties(hints, "categorize")["root"]
    assert root == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "children": {"type": "array", "items": {"type": "object"}},
        },
        "description": "The top category.",
    }
    assert _tool(hints, "categorize").response is None  # -> None


def test_async_positional_only_and_overloaded_functions(hints: Catalog) -> None:
    fetch = _tool(hints, "fetch_page")
    assert fetch.parameters["required"] == ["url"]
    assert fetch.response == {"type": "string"}
    clamp = _tool(hints, "clamp")
    assert clamp.description == ""
    assert clamp.parameters["required"] == ["value"]
    assert clamp.parameters["properties"]["high"] == {"type": "number", "default": 1.0}
    scale = _tool(hints, "scale")
    assert scale.parameters["properties"]["factor"]["default"] == 2.0  # the implementation


def test_all_selects_the_functions() -> None:
    source = (
        "__all__ = ['visible', '_internal']\n"
        "def visible() -> int:\n    return 1\n"
        "def hidden() -> int:\n    return 2\n"
        "def _internal() -> int:\n    return 3\n"
    )
    catalog = load_catalog_bytes(source.encode(), "mod.py")
    assert [t.name for t in catalog.tools] == ["visible", "_internal"]


# ---- errors ------------------------------------------------------------------------------------


def test_a_syntax_error_names_its_line() -> None:
    error = _error("def ok() -> int:\n    return 1\n\ndef broken(:\n    pass\n")
    assert (error.document, error.place) == ("tools.py", "line 4")
    assert error.message.startswith("Python syntax error: ")
    assert "fix the module so that it parses" in error.message


def test_a_module_without_public_functions() -> None:
    error = _error("import os\n\ndef _helper():\n    pass\n\nclass A:\n    def m(self): ...\n")
    assert error.place is None
    assert "no public functions found" in error.message
    assert "whose name does not start with '_'" in error.message


def test_all_naming_no_function() -> None:
    error = _error("from os import path\n__all__ = ['path']\n\ndef helper():\n    pass\n")
    assert "__all__ lists path, none of which is a function defined" in error.message
    assert "list the functions to expose in __all__" in error.message


def test_a_computed_all_cannot_be_read() -> None:
    error = _error("names = ['f']\n__all__ = names + []\n\ndef f():\n    pass\n")
    assert error.place == "line 2"
    assert "__all__ must be a literal list of function names" in error.message
    assert "write the names out" in error.message


def test_a_function_name_that_is_not_a_tool_name() -> None:
    error = _error("def café(x: int) -> int:\n    return x\n")
    assert error.place == "function café (line 1)"
    assert "cannot be a tool name" in error.message
    assert "rename it" in error.message
