"""A catalog document loaded into the record the database keeps: what `POST /v1/catalogs` stores
and what `actionforge run` stores without going through the API (no web stack is imported here).
"""

from __future__ import annotations

import uuid

from service.api.safe_text import TextRule, json_problems, printable, text_problem
from service.db.models import CatalogRecord
from service.errors import InvalidRequest
from unified.catalogs import Catalog, load_catalog_bytes

PYTHON_CATALOG = "python"
MAX_TITLE = 512  # the length of the title column; PostgreSQL refuses a longer one


def catalog_record(
    raw: bytes, name: str, kind: str | None, max_bytes: int
) -> tuple[CatalogRecord, Catalog]:
    """The record to store for the document `raw` called `name`, and the loaded catalog (its
    warnings). Raises `CatalogError` for a document that cannot be loaded and `InvalidRequest`
    for text the service refuses."""
    catalog = load_catalog_bytes(raw, name, kind=kind, max_bytes=max_bytes)
    refuse_unsafe_catalog_text(catalog, name)
    record = CatalogRecord(
        id=uuid.uuid4().hex,
        name=name,
        kind=catalog.kind,
        title=None if catalog.title is None else catalog.title[:MAX_TITLE],
        sha256=catalog.sha256,
        tools=[
            tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in catalog.tools
        ],
        document=kept_source(raw, catalog),
    )
    return record, catalog


def kept_source(raw: bytes, catalog: Catalog) -> str | None:
    """The text stored with a catalog: a Python module's source, which the execution stage
    runs (its functions are called in a sandbox); None for the other kinds."""
    if catalog.kind != PYTHON_CATALOG:
        return None
    return raw.decode("utf-8-sig")


def refuse_unsafe_catalog_text(catalog: Catalog, name: str) -> None:
    """Refuse (422) a loaded catalog whose title or tools hold text `service.api.safe_text`
    refuses: YAML escapes and Python string escapes can write a NUL that the document's bytes
    do not show."""
    if catalog.title is not None and (problem := text_problem(catalog.title, TextRule.VALUE, ())):
        raise InvalidRequest(f"{name}: the title {problem['msg']}; remove it from the document")
    for tool in catalog.tools:
        data = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
        for problem in json_problems(data, ()):
            raise InvalidRequest(
                f"{name}: tool '{printable(tool.name)}': {_place(problem['loc'])} "
                f"{problem['msg']}; remove it from the document"
            )


def _place(loc: tuple[str | int, ...]) -> str:
    *path, last = loc
    if last == "[key]":
        return "the key " + ".".join(map(str, path))
    return ".".join(map(str, loc))
