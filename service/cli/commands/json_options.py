"""Options that take a JSON object inline or from a file (`@FILE`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unified.errors import ActionForgeError


def parse_json_object(option: str, text: str) -> dict[str, Any]:
    """A JSON object given inline or as `@FILE`; `ActionForgeError` names the option."""
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ActionForgeError(f"{option}: cannot read {text[1:]} ({exc.strerror})") from None
    try:
        value = json.loads(source)
    except ValueError as exc:
        raise ActionForgeError(
            f"{option}: not JSON ({exc}); give an object like "
            '\'{"model": "/models/x", "base_url": "http://vllm:8000/v1"}\' or @file.json'
        ) from None
    if not isinstance(value, dict):
        raise ActionForgeError(f"{option}: give a JSON object, not {type(value).__name__}")
    return value
