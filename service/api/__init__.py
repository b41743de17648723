"""The REST API: catalogs, jobs, their samples and exports, under `/v1`.

`create_app` is imported on first use, so that a module of this package (the schemas the CLI's
client reads, the text rules) can be imported without the web stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.api.app import create_app

        return create_app
    raise AttributeError(f"module 'service.api' has no attribute {name!r}")
