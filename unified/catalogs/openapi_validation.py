"""Checking an OpenAPI document against the official schema of its version, keeping only
the problems that would make its tools wrong.

The document is validated with openapi-spec-validator's bundled schema of its version. A problem
is fatal only where the loader reads it: under `paths` (an operation that becomes a tool) or in a
component that such an operation uses. Problems the tools do not depend on are tolerated, since
real-world documents are full of them: anything under `info`, `tags`, `servers`, `security`,
`externalDocs`, `webhooks`, examples, links, callbacks, response headers and `x-` extensions;
unknown keys; a missing `description`; and missing or empty `responses`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from openapi_spec_validator import schemas

from unified.catalogs.openapi_refs import json_pointer
from unified.errors import CatalogError

_SCHEMA_CONTENTS = {
    "2.0": "get_schema_content_v2",
    "3.0": "get_schema_content_v30",
    "3.1": "get_schema_content_v31",
    "3.2": "get_schema_content_v32",
}


@cache
def _validator(version: str) -> Validator | None:
    """The validator of an OpenAPI version's official schema; None for a version whose schema
    this openapi-spec-validator does not bundle (such a document is loaded unvalidated)."""
    content = getattr(schemas, _SCHEMA_CONTENTS.get(version, ""), None)
    if content is None:
        return None
    # Built with jsonschema itself: openapi-spec-validator's ready validators switch to
    # jsonschema-rs, whose errors read differently, wherever that package happens to be installed.
    schema = content()
    validator: Validator = validator_for(schema)(schema)
    return validator


_READ_ROOTS = frozenset({"paths", "components", "definitions", "parameters", "responses"})
_UNREAD_KEYS = frozenset(
    {
        "example",
        "examples",
        "links",
        "callbacks",
        "headers",
        "security",
        "securitySchemes",
        "tags",
        "externalDocs",
        "servers",
        "encoding",
        "xml",
        "discriminator",
    }
)
_TOLERATED_MISSING = ("'description'", "'responses'")


@dataclass(frozen=True)
class Problem:
    """One fatal-looking problem: where it is (a JSON pointer) and what is wrong."""

    place: str
    message: str


def _precise(error: ValidationError) -> tuple[ValidationError, list[Any]]:
    """The sub-error of a failed oneOf/anyOf that most likely names the real mistake (the
    alternative with the fewest complaints, and in it the deepest complaint), with every value
    that the alternatives allow at that place when they differ only by an enum."""
    allowed: list[Any] = []
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else 0
            branches.setdefault(branch, []).append(sub)
        chosen = min(branches.values(), key=len)
        parent, error = (
            error,
            max(chosen, key=lambda sub: (len(sub.absolute_path), not sub.context)),
        )
        allowed = [
            value
            for sub in parent.context
            if sub.validator == "enum"
            and sub.absolute_path == error.absolute_path
            and isinstance(sub.validator_value, list)
            for value in sub.validator_value
        ]
    return error, allowed


def _describe(error: ValidationError, allowed: list[Any], version: str) -> str:
    if error.validator == "required":
        return f"{error.message}; add it"
    if error.validator == "type":
        return (
            f"expected {error.validator_value}, found {type(error.instance).__name__}; "
            "change the value"
        )
    if error.validator == "enum":
        values = allowed or error.validator_value
        if isinstance(values, list):
            choices = ", ".join(dict.fromkeys(map(str, values)))
            return f"{error.instance!r} is not allowed here; use one of {choices}"
    text = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{text}; fix it as the OpenAPI {version} specification requires"


def _tolerated(error: ValidationError) -> bool:
    path = [str(token) for token in error.absolute_path]
    if not path or path[0] not in _READ_ROOTS:
        return True
    if any(token in _UNREAD_KEYS or token.startswith("x-") for token in path):
        return True
    if error.validator == "additionalProperties" or path[-1] == "responses":
        return True
    return error.validator == "required" and error.message.startswith(_TOLERATED_MISSING)


def find_problems(data: Any, version: str) -> list[Problem]:
    """The problems of the document that the loader must not ignore, in document order."""
    validator = _validator(version)
    if validator is None:
        return []
    problems = []
    for error in validator.iter_errors(data):
        precise, allowed = _precise(error)
        if _tolerated(precise):
            continue
        place = json_pointer(*precise.absolute_path)
        problems.append(Problem(place, _describe(precise, allowed, version)))
    return problems


def raise_first(problems: Iterable[Problem], document: str, version: str) -> None:
    """Raise `CatalogError` for the first of `problems`, if any."""
    for problem in problems:
        raise CatalogError(
            document,
            problem.place,
            f"invalid OpenAPI {version} document: {problem.message}",
        )


def in_operations(problems: list[Problem]) -> list[Problem]:
    """The problems under `paths`."""
    return [p for p in problems if p.place.startswith("/paths/")]


def in_targets(problems: list[Problem], targets: set[str]) -> list[Problem]:
    """The problems inside any of `targets` (JSON pointers of the components in use)."""
    return [
        p
        for p in problems
        if not p.place.startswith("/paths/")
        and any(p.place == t or p.place.startswith(t + "/") for t in targets)
    ]
