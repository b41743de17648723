"""Validation problems described for people: each names where it is and what to change. The
API's 422 bodies and the CLI's one-line errors (`run` checks a job's spec here) both use them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.api.safe_text import NOT_A_NUMBER, UNSAFE_CHARACTER

_PLACES = {
    "body": "field '{}' of the request body",
    "query": "query parameter '{}'",
    "path": "path parameter '{}'",
    "header": "header '{}'",
    "cookie": "cookie '{}'",
}

_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it",
    "model_attributes_type": "send a JSON object",
    "dict_type": "send a JSON object",
    "model_type": "send a JSON object",
    "enum": "use one of those",
    "literal_error": "use one of those",
    UNSAFE_CHARACTER: "remove it",
    NOT_A_NUMBER: "send a number",
}


def describe_problem(error: dict[str, Any]) -> dict[str, str]:
    """One validation problem as `{in, field, message}`; the message names the field and the fix."""
    location = [str(part) for part in error.get("loc", ())]
    source, path = (location[0], location[1:]) if location else ("body", [])
    if error.get("type") == "json_invalid":
        return _json_problem(source, path, error)
    is_key = bool(path) and path[-1] == "[key]"
    if is_key:
        path = path[:-1]
    field = ".".join(path)
    kind = error.get("type", "")
    if is_key and len(path) > 1:
        owner = _PLACES.get(source, "'{}'").format(".".join(path[:-1]))
        where = f"key '{path[-1]}' of {owner}"
    elif field:
        where = _PLACES.get(source, "'{}'").format(field)
    elif source == "body":
        where = "the request body"
    else:
        where = f"the {source}"
    fix = _FIXES.get(kind, "fix its value")
    got = ""
    if kind != "missing" and "input" in error:
        got = f" (got {_short(error['input'])})"
    message = f"{where}: {error.get('msg', 'is not valid')}{got}; {fix}"
    return {"in": source, "field": field, "message": message}


def _json_problem(source: str, path: list[str], error: dict[str, Any]) -> dict[str, str]:
    at = f" at character {path[0]}" if path else ""
    reason = (error.get("ctx") or {}).get("error")
    because = f" ({reason})" if reason else ""
    message = f"the request {source} is not valid JSON{at}{because}; send valid JSON"
    return {"in": source, "field": "", "message": message}


def describe_problems(errors: Sequence[Any]) -> tuple[str, list[dict[str, str]]]:
    """A one-line summary of validation problems and the list of them, each described."""
    problems = [describe_problem(dict(error)) for error in errors]
    if not problems:
        return "the request is not valid; check it against the API docs at /docs", problems
    summary = problems[0]["message"]
    if len(problems) > 1:
        rest = "; ".join(problem["message"] for problem in problems[1:])
        summary += f" (and {len(problems) - 1} more: {rest})"
    return summary, problems


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
