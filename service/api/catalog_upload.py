"""Reading a catalog from a `POST /v1/catalogs` request, in any of the forms it may come in.

- `multipart/form-data`: the document in the form field `file` (its file name names it), the kind
  optionally in the field `kind`;
- JSON `{"name": ..., "content": "<the document as text>", "kind": ...}` (`name`, `kind`
  optional);
- any other JSON body: the catalog document itself (an OpenAPI document, a function list, ...);
- any other body (YAML, Python source, ...): the document as is.

Query parameters `name` and `kind` name the document and its kind for the last two forms.

A name holding a control or bidirectional control character is refused, as is text of a JSON body
or of the loaded catalog that `service.api.safe_text` refuses (422 naming where).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import orjson
from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service.api.safe_text import TextRule, json_problems, text_problem
from service.errors import InvalidRequest

FORM_FIELD = "file"
WRAPPER_KEYS = frozenset({"name", "content", "kind"})
_MAX_NAME = 200
# Room for a JSON wrapper's escaping or multipart framing around a document of the largest size.
_ENVELOPE_BYTES = 64 * 1024


@dataclass(frozen=True)
class CatalogUpload:
    """The bytes of an uploaded catalog document, its name (for messages) and its kind if given."""

    raw: bytes
    name: str
    kind: str | None


def too_large(size: int, limit: int) -> HTTPException:
    """The 413 error for a catalog of `size` bytes over `limit`."""
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the catalog is {size:,} bytes, more than the limit of {limit:,} "
        "(AF_MAX_CATALOG_BYTES); split the catalog or raise AF_MAX_CATALOG_BYTES",
    )


async def read_catalog_upload(
    request: Request, max_bytes: int, name: str | None, kind: str | None
) -> CatalogUpload:
    """The catalog a request carries; 413 when it is larger than `max_bytes`."""
    body = await _read_body(request, 2 * max_bytes + _ENVELOPE_BYTES, max_bytes)
    if not body.strip():
        raise InvalidRequest(
            "the request body is empty; send the catalog document as the body, as the form "
            f'field \'{FORM_FIELD}\', or as JSON {{"name": ..., "content": "<the document>"}}'
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        upload = await _from_form(request, body, kind)
    elif content_type == "application/json" or content_type.endswith("+json"):
        upload = _from_json(body, name, kind)
    else:
        upload = CatalogUpload(body, _clean_name(name, "catalog", ("query", "name")), kind)
    if len(upload.raw) > max_bytes:
        raise too_large(len(upload.raw), max_bytes)
    return upload


async def _read_body(request: Request, cap: int, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _from_form(request: Request, body: bytes, kind: str | None) -> CatalogUpload:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1).parse()
    except MultiPartException as exc:
        raise InvalidRequest(
            f"the multipart body cannot be read ({exc.message}); "
            f"send the catalog file in the form field '{FORM_FIELD}'"
        ) from None
    upload = form.get(FORM_FIELD)
    if not isinstance(upload, UploadFile):
        fields = ", ".join(map(repr, form.keys())) or "none"
        raise InvalidRequest(
            f"the form has no file field '{FORM_FIELD}' (fields sent: {fields}); "
            f"send the catalog file as '{FORM_FIELD}'"
        )
    raw = await upload.read()
    form_kind = form.get("kind")
    chosen_kind = form_kind if isinstance(form_kind, str) and form_kind else kind
    _refuse_problems([text_problem(chosen_kind or "", TextRule.PARAMETER, ("body", "kind"))])
    file_name = _clean_name(upload.filename, "catalog", ("body", FORM_FIELD, "filename"))
    return CatalogUpload(raw, file_name, chosen_kind)


def _from_json(body: bytes, name: str | None, kind: str | None) -> CatalogUpload:
    query_name = ("query", "name")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Not JSON after all: the catalog loader names the syntax error and where it is.
        return CatalogUpload(body, _clean_name(name, "catalog.json", query_name), kind)
    if isinstance(data, dict) and "content" in data and set(data) <= WRAPPER_KEYS:
        return _from_wrapper(data, kind)
    _refuse_problems(json_problems(data, ("body",)))
    return CatalogUpload(body, _clean_name(name, "catalog.json", query_name), kind)


def _from_wrapper(data: dict[str, Any], kind: str | None) -> CatalogUpload:
    content, name, wrapped_kind = data["content"], data.get("name"), data.get("kind")
    if not isinstance(content, str):
        raise InvalidRequest(
            "field 'content' of the request body must be the catalog document as text; "
            "send the file's text as a string (or send the document itself as the body)"
        )
    for field, value in (("name", name), ("kind", wrapped_kind)):
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(
                f"field '{field}' of the request body must be a string; send it as text"
            )
    _refuse_problems(
        [
            text_problem(content, TextRule.VALUE, ("body", "content")),
            text_problem(wrapped_kind or "", TextRule.PARAMETER, ("body", "kind")),
        ]
    )
    clean_name = _clean_name(name, "catalog", ("body", "name"))
    return CatalogUpload(content.encode(), clean_name, wrapped_kind or kind)


def _clean_name(name: str | None, default: str, loc: tuple[str, ...]) -> str:
    """The file-name part of a client-given name, cut to a reasonable length; a name holding a
    control or bidirectional control character (which could make it show as another) is
    refused, naming where it came from (`loc`)."""
    _refuse_problems([text_problem(name or "", TextRule.NAME, loc)])
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    return (base or default)[:_MAX_NAME]


def _refuse_problems(problems: Iterable[dict[str, Any] | None]) -> None:
    found = [problem for problem in problems if problem is not None]
    if found:
        raise RequestValidationError(found)
