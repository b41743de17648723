"""Reading what the LLM answered: JSON objects out of result texts, and the record a sample keeps
when its generation failed.

A failed generation is not dropped: the generator returns a sample that says why in
`meta.extra["generation_error"]` (one of `FAILURES`) with a `generation_detail`, and has no steps.
The verifiers' generation check (`generation_failure`) rejects such samples first, a truncated
one with the `truncated` reason, so no failed output is ever kept and every one is counted.
"""

from __future__ import annotations

import json
from typing import Any

from llm.base import LLMResult
from unified.model import Sample

GENERATION_ERROR = "generation_error"
GENERATION_DETAIL = "generation_detail"
RAW_OUTPUT = "raw_output"
RAW_OUTPUT_LIMIT = 2000
"""How much of a failed output a sample keeps, for the user to see what went wrong."""

TRUNCATED = "truncated"
BACKEND_ERROR = "backend_error"
UNPARSEABLE = "unparseable"
PROMPT_TOO_LONG = "prompt_too_long"
BLUEPRINT_FAILED = "blueprint_failed"
BLUEPRINT_NOT_FOLLOWED = "blueprint_not_followed"
FAILURES = (
    TRUNCATED,
    BACKEND_ERROR,
    UNPARSEABLE,
    PROMPT_TOO_LONG,
    BLUEPRINT_FAILED,
    BLUEPRINT_NOT_FOLLOWED,
)
"""Why a generation failed: the output hit max_tokens; the backend refused or failed this one
request; the output is not the JSON object asked for (a server that ignores the schema); the
prompt, trimmed as far as it goes, left no room for max_tokens in the model's context (never
sent); a multi_turn blueprint's calls fail on the mock API; a multi_turn conversation's calls
are not its blueprint's (the conversation is kept, see `generators.llm.multi_turn`)."""


class Unparseable(ValueError):
    """An LLM output is not the JSON object its request asked for."""


def result_failure(result: LLMResult, max_tokens: int) -> tuple[str, str] | None:
    """Why a result cannot be used as it is (truncated, or failed in the backend), or None."""
    if result.finish_reason == "length":
        return (
            TRUNCATED,
            f"the output stopped at max_tokens={max_tokens} ({result.completion_tokens} tokens) "
            "before its JSON was complete; raise max_tokens or lower the text limits",
        )
    if result.finish_reason == "error":
        return BACKEND_ERROR, result.error or "the backend failed this request without a message"
    return None


def parse_object(text: str, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The JSON object in `text`, checked to have `fields` of the given types.

    Control characters inside strings are accepted (grammar-constrained decoding lets them
    through, and they are harmless here); anything else malformed raises `Unparseable`.
    """
    try:
        value = json.loads(text, strict=False)
    except ValueError as exc:
        raise Unparseable(f"the output is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Unparseable(f"the output is a JSON {type(value).__name__}, not an object")
    for name, kind in fields.items():
        if name not in value:
            raise Unparseable(f"the output has no '{name}'")
        if not isinstance(value[name], kind):
            raise Unparseable(f"'{name}' in the output is a {type(value[name]).__name__}")
    return value


def failure_extra(kind: str, detail: str, text: str) -> dict[str, Any]:
    """What `meta.extra` records about a failed generation."""
    return {
        GENERATION_ERROR: kind,
        GENERATION_DETAIL: detail,
        RAW_OUTPUT: text[:RAW_OUTPUT_LIMIT],
    }


def generation_failure(sample: Sample) -> tuple[str, str] | None:
    """`(kind, detail)` when the sample records a failed generation, else None. `kind` is one
    of `FAILURES`; a verifier rejects such a sample with it (`truncated` is its own reason)."""
    kind = sample.meta.extra.get(GENERATION_ERROR)
    if kind is None:
        return None
    detail = sample.meta.extra.get(GENERATION_DETAIL)
    return str(kind), str(detail) if detail is not None else str(kind)
