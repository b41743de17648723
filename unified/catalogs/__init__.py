"""API catalogs: OpenAPI/Swagger documents, JSON function lists and Python modules -> tools."""

from unified.catalogs.base import (
    DEFAULT_MAX_BYTES,
    LOADERS,
    Catalog,
    CatalogDocument,
    CatalogLoader,
    check_tool,
    load_catalog,
    load_catalog_bytes,
)
from unified.catalogs.limits import DEFAULT_LIMITS, DocumentLimits

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "LOADERS",
    "Catalog",
    "CatalogDocument",
    "CatalogLoader",
    "DocumentLimits",
    "check_tool",
    "load_catalog",
    "load_catalog_bytes",
]
