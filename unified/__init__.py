"""The xLAM unified format and everything that speaks it."""

from unified.errors import ActionForgeError, CatalogError, RowError, UnknownNameError
from unified.model import (
    FORMAT_VERSION,
    MULTI_TURN_VERSION,
    SINGLE_TURN_VERSION,
    Acceptable,
    Example,
    HttpBinding,
    QueryStyle,
    Sample,
    SampleMeta,
    Step,
    Tool,
    ToolCall,
    ToolSource,
    Turn,
    unified_json_schema,
    unified_json_schema_text,
)

__all__ = [
    "FORMAT_VERSION",
    "MULTI_TURN_VERSION",
    "SINGLE_TURN_VERSION",
    "Acceptable",
    "ActionForgeError",
    "CatalogError",
    "Example",
    "HttpBinding",
    "QueryStyle",
    "RowError",
    "Sample",
    "SampleMeta",
    "Step",
    "Tool",
    "ToolCall",
    "ToolSource",
    "Turn",
    "UnknownNameError",
    "unified_json_schema",
    "unified_json_schema_text",
]
