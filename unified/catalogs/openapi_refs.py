"""Local `$ref` lookup in one OpenAPI document, with messages that say where a bad reference is."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from referencing import Registry, Resource, Specification
from referencing.exceptions import Unresolvable

from unified.errors import CatalogError

_DOCUMENT_URI = "urn:actionforge:openapi-document"
_MAX_HOPS = 32


def escape_token(token: str) -> str:
    """One JSON pointer token, with `~` and `/` escaped."""
    return token.replace("~", "~0").replace("/", "~1")


def json_pointer(*tokens: str | int) -> str:
    """A JSON pointer made of the given tokens."""
    return "".join("/" + escape_token(str(token)) for token in tokens)


class _Nowhere(Exception):
    pass


class LocalRefs:
    """Resolves the local references (`#/...`) of one document and remembers every target used."""

    def __init__(self, data: Any, document: str) -> None:
        resource: Resource[Any] = Specification.OPAQUE.create_resource(data)
        registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
        self._resolver = registry.resolver(_DOCUMENT_URI)
        self._document = document
        self.used: set[str] = set()

    def resolve(self, ref: Any, at: str, operation: str) -> tuple[str, Any]:
        """The target (a JSON pointer) and contents of `ref`, which is written at pointer `at`."""
        if not isinstance(ref, str):
            raise CatalogError(
                self._document,
                at,
                f"$ref must be a string, found {type(ref).__name__} ({operation}); "
                "write the reference as a string like '#/components/schemas/Name'",
            )
        if not ref.startswith("#"):
            raise CatalogError(self._document, at, self._remote_message(ref, operation))
        fragment = ref[1:]
        if fragment and not fragment.startswith("/"):
            raise CatalogError(
                self._document,
                at,
                f"$ref '{ref}' uses a plain-name fragment ({operation}); only JSON pointer "
                "references are supported: write it as '#/components/schemas/Name'",
            )
        try:
            contents = self._lookup(fragment, 0)
        except _Nowhere:
            target = unquote(fragment) or "the document root"
            raise CatalogError(
                self._document,
                at,
                f"$ref '{ref}' points to nothing in this document ({operation}); "
                f"define {target} or correct the reference",
            ) from None
        target = unquote(fragment)
        self.used.add(target)
        return target, contents

    def _lookup(self, fragment: str, hops: int) -> Any:
        try:
            return self._resolver.lookup("#" + fragment).contents
        except (Unresolvable, ValueError):
            pass
        # Bundlers accept pointers that pass through another $ref
        # (`#/components/schemas/A/properties/b/items/...` where `b/items` is a $ref): follow it.
        tokens = fragment.split("/")
        for cut in range(len(tokens) - 1, 1, -1):
            head, rest = "/".join(tokens[:cut]), "/".join(tokens[cut:])
            try:
                node = self._resolver.lookup("#" + head).contents
            except (Unresolvable, ValueError):
                continue
            ref = node.get("$ref") if isinstance(node, dict) else None
            if isinstance(ref, str) and ref.startswith("#/") and hops < _MAX_HOPS:
                return self._lookup(f"{ref[1:]}/{rest}", hops + 1)
            raise _Nowhere
        raise _Nowhere

    def _remote_message(self, ref: str, operation: str) -> str:
        message = (
            f"$ref '{ref}' points outside this document ({operation}); only local references "
            "(starting with '#/') are supported: bundle the referenced file into this document "
            "and refer to it as '#/...'"
        )
        for guess in (f"/{ref}", f"/definitions/{ref}", f"/components/schemas/{ref}"):
            if "#" in ref or ":" in ref:
                break
            try:
                self._lookup(guess, 0)
            except _Nowhere:
                continue
            return f"{message} (did you mean '#{guess}'?)"
        return message
