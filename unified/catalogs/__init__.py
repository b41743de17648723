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

__all__ = [
    "DEFAULT_MAX_BYTES",
    "LOADERS",
    "Catalog",
    "CatalogDocument",
    "CatalogLoader",
    "check_tool",
    "load_catalog",
    "load_catalog_bytes",
]
