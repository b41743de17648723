"""Options models (a generator's, a stage's): the first validation problem told as one line that
names the option and what is wrong with it."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError


def option_problem(exc: ValidationError, model: type[BaseModel]) -> str:
    """`unknown option 'x'; known options: ...`, `option 'x' is required (what it is)` or
    `option 'x': what is wrong`, for the first error of `exc` raised by `model` (an unknown
    option first: a misspelt option also shows up as a missing one)."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    name = ".".join(str(part) for part in error["loc"]) or "options"
    if error["type"] == "extra_forbidden":
        return f"unknown option '{name}'; known options: {', '.join(model.model_fields) or 'none'}"
    if error["type"] == "missing":
        field = model.model_fields.get(name)
        described = field.description if field is not None else None
        return f"option '{name}' is required" + (f" ({described})" if described else "")
    return f"option '{name}': {error['msg']}"
