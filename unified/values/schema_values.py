"""Sampling JSON values from a JSON Schema: realistic strings by `format` and parameter name,
numbers within bounds, enums, arrays, nested objects, `anyOf`/`oneOf`/`allOf` and local `$ref`s.

The sampler aims for values that satisfy the schema by construction; keywords it does not model
(`not`, `if`/`then`, `contains`...) are left to the caller, who validates and samples again.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import unquote

from unified.values.fakes import Fakes
from unified.values.scalar_values import Unsatisfiable, both_numbers, sample_number, sample_string
from unified.values.value_kinds import DEFAULT_INTEGER_RANGE, name_words, number_range, string_kind

__all__ = ["SchemaSampler", "Unsatisfiable"]

OPTIONAL_RATE = 0.3
"""How often an optional property is given a value."""
DEFAULT_RATE = 0.2
"""How often a schema's `default` is used as the value."""
EXAMPLE_RATE = 0.3
"""How often one of a schema's `examples` is used as the value."""
REF_DEPTH_FOR_MINIMAL = 3
"""After this many `$ref`s on one path, objects get only their required properties and arrays
their fewest items, so circular schemas end."""
MAX_DEPTH = 16
"""Nesting beyond this means the schema has no finite instance the sampler can find."""

_PAIR_WORDS = frozenset({"coordinate", "coordinates", "point", "latlng", "position", "range"})
_PAIR_WORDS |= {"interval", "bounds", "location"}
_MATRIX_WORDS = frozenset({"mat", "matrix", "matrices", "grid"})
_NUMERIC_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two schemas that must both hold, as one (good enough for sampling, not a full algebra)."""
    merged = dict(base)
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
            continue
        old = merged[key]
        if key == "properties" and isinstance(old, dict) and isinstance(value, dict):
            props = dict(old)
            for prop, sub in value.items():
                props[prop] = {"allOf": [props[prop], sub]} if prop in props else sub
            merged[key] = props
        elif key == "required" and isinstance(old, list) and isinstance(value, list):
            merged[key] = list(dict.fromkeys([*old, *value]))
        elif key == "type":
            old_types = {old} if isinstance(old, str) else set(old)
            new_types = {value} if isinstance(value, str) else set(value)
            if "number" in old_types:
                old_types.add("integer")
            if "number" in new_types:
                new_types.add("integer")
            both = sorted(old_types & new_types)
            if not both:
                raise Unsatisfiable(f"no type is both {old!r} and {value!r}")
            merged[key] = both if len(both) > 1 else both[0]
        elif key == "enum" and isinstance(old, list) and isinstance(value, list):
            merged[key] = [item for item in old if item in value]
        elif both_numbers(old, value) and key.startswith(("min", "exclusiveMin")):
            merged[key] = max(old, value)
        elif both_numbers(old, value) and key.startswith(("max", "exclusiveMax")):
            merged[key] = min(old, value)
        else:
            merged[key] = value
    return merged


def _schema_types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list) and declared:
        return [t for t in declared if isinstance(t, str)]
    if any(k in schema for k in ("properties", "additionalProperties", "required")):
        return ["object"]
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return ["array"]
    if any(k in schema for k in _NUMERIC_BOUNDS):
        return ["number"]
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return ["string"]
    return []


class SchemaSampler:
    """Samples values for one tool's parameters schema, which is also the root for `$ref`s."""

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.root = parameters

    def arguments(self, fakes: Fakes) -> dict[str, Any]:
        """A JSON object for the whole parameters schema: every required property, some optional
        ones, and at least one property when the schema declares any."""
        return self._object(self.root, "", fakes, depth=0, refs=0, top=True)

    def property_value(self, name: str, fakes: Fakes) -> Any:
        """A fresh value for one top-level property (a parallel call's varying argument)."""
        props = self.root.get("properties")
        schema = props.get(name, {}) if isinstance(props, dict) else {}
        return self.value(schema, name, fakes, depth=1, refs=0)

    def value(self, schema: Any, name: str, fakes: Fakes, depth: int, refs: int) -> Any:
        """A value for `schema`; `name` is the property it is for (it picks realistic strings)."""
        if depth > MAX_DEPTH:
            raise Unsatisfiable(f"nesting deeper than {MAX_DEPTH} at {name!r}")
        if schema is False:
            raise Unsatisfiable(f"{name!r} has the schema false")
        if not isinstance(schema, dict) or not schema:
            return self._plausible(name, "", fakes)
        schema, refs = self._flatten(schema, refs)
        rng = fakes.rng
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        enum = schema.get("enum")
        if isinstance(enum, list):
            if not enum:
                raise Unsatisfiable(f"{name!r} has an empty enum")
            choices = [item for item in enum if item is not None] or enum
            return copy.deepcopy(rng.choice(choices))
        if "default" in schema and rng.random() < DEFAULT_RATE:
            return copy.deepcopy(schema["default"])
        examples = schema.get("examples")
        if isinstance(examples, list) and examples and rng.random() < EXAMPLE_RATE:
            return copy.deepcopy(rng.choice(examples))
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = self._pick_branch(branches, fakes)
                if branch is False:
                    raise Unsatisfiable(f"{name!r}: every branch of {key} is false")
                if isinstance(branch, dict):
                    branch, refs = self._flatten(branch, refs)
                    rest = _merge(rest, branch)
                return self.value(rest, name, fakes, depth + 1, refs)
        types = _schema_types(schema)
        concrete = [t for t in types if t != "null"]
        if not types:
            return self._plausible(name, str(schema.get("description", "")), fakes)
        if not concrete:
            return None
        kind = rng.choice(concrete)
        description = str(schema.get("description", ""))
        if kind == "object":
            return self._object(schema, name, fakes, depth, refs)
        if kind == "array":
            return self._array(schema, name, fakes, depth, refs)
        if kind == "string":
            return sample_string(schema, name, description, fakes)
        if kind == "integer":
            return sample_number(schema, name, fakes, integer=True)
        if kind == "number":
            return sample_number(schema, name, fakes, integer=False)
        if kind == "boolean":
            return rng.random() < 0.5
        raise Unsatisfiable(f"{name!r} has the unknown type {kind!r}")

    def _flatten(self, schema: dict[str, Any], refs: int) -> tuple[dict[str, Any], int]:
        """Follow `$ref`s and fold `allOf` into one schema."""
        while "$ref" in schema:
            target = self._resolve(schema["$ref"])
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if target is False:
                raise Unsatisfiable(f"$ref {schema['$ref']!r} points at the schema false")
            target = target if isinstance(target, dict) else {}
            schema = _merge(target, siblings) if siblings else target
            refs += 1
            if refs > MAX_DEPTH:
                raise Unsatisfiable("$refs refer to each other without end")
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                if part is False:
                    raise Unsatisfiable("allOf has the schema false")
                if isinstance(part, dict):
                    flat, refs = self._flatten(part, refs)
                    merged = _merge(merged, flat)
            schema = merged
        return schema, refs

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise Unsatisfiable(f"$ref {ref!r} is not a reference inside the tool's schema")
        node: Any = self.root
        pointer = unquote(ref[1:])
        for token in pointer.split("/")[1:] if pointer else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise Unsatisfiable(f"$ref {ref!r} points at nothing")
        return node

    @staticmethod
    def _pick_branch(branches: list[Any], fakes: Fakes) -> Any:
        def is_null(branch: Any) -> bool:
            return isinstance(branch, dict) and branch.get("type") == "null"

        usable = [b for b in branches if b is not False and not is_null(b)]
        return fakes.rng.choice(usable or branches)

    def _object(
        self,
        schema: dict[str, Any],
        name: str,
        fakes: Fakes,
        depth: int,
        refs: int,
        top: bool = False,
    ) -> dict[str, Any]:
        rng = fakes.rng
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        minimal = refs > REF_DEPTH_FOR_MINIMAL
        chosen = [
            key
            for key in props
            if key in required or (not minimal and rng.random() < OPTIONAL_RATE)
        ]
        if top and not chosen and props:
            chosen = [rng.choice(list(props))]
        min_props = schema.get("minProperties")
        if isinstance(min_props, int) and len(chosen) < min_props:
            chosen += [key for key in props if key not in chosen][: min_props - len(chosen)]
        dependent = schema.get("dependentRequired")
        if isinstance(dependent, dict):
            for key in list(chosen):
                needs = dependent.get(key)
                if isinstance(needs, list):
                    chosen += [n for n in needs if isinstance(n, str) and n not in chosen]
        extra = schema.get("additionalProperties")
        result: dict[str, Any] = {}
        for key in chosen:
            sub = props.get(key, extra if isinstance(extra, dict) else {})
            result[key] = self.value(sub, key, fakes, depth + 1, refs)
        for key in required:
            if key not in result:
                sub = extra if isinstance(extra, dict) else {}
                result[key] = self.value(sub, key, fakes, depth + 1, refs)
        wants_entries = not props and isinstance(extra, dict) and extra and not minimal
        if wants_entries or (isinstance(min_props, int) and len(result) < min_props):
            count = max(rng.randint(1, 2), (min_props or 0) - len(result))
            for _ in range(count * 3):
                if len(result) >= len(chosen) + count:
                    break
                key = fakes.word()
                if key not in result and key not in props:
                    sub = extra if isinstance(extra, dict) else {}
                    result[key] = self.value(sub, key, fakes, depth + 1, refs)
        return result

    def _array(
        self, schema: dict[str, Any], name: str, fakes: Fakes, depth: int, refs: int
    ) -> list[Any]:
        rng = fakes.rng
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items", {})
        min_items = schema.get("minItems", 0)
        max_items = schema.get("maxItems")
        min_items = min_items if isinstance(min_items, int) else 0
        words = set(name_words(name))
        minimal = refs > REF_DEPTH_FOR_MINIMAL
        low = min_items if minimal else max(min_items, 1)
        high = low if minimal else low + 2
        if isinstance(max_items, int):
            high = min(high, max_items)
        if items is False:
            high = min(high, len(prefix))
        if high < low:
            raise Unsatisfiable(f"{name!r}: minItems is above maxItems")
        count = rng.randint(low, high)
        if words & _PAIR_WORDS and low <= 2 <= high:
            count = 2
        if not items and not prefix and items is not False:
            return self._plain_list(words, count, fakes)
        unique = schema.get("uniqueItems") is True
        result: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(result) < count and attempts < count * 8:
            attempts += 1
            index = len(result)
            sub = prefix[index] if index < len(prefix) else items
            value = self.value(sub, _singular_name(name), fakes, depth + 1, refs)
            if unique:
                key = repr(_canonical(value))
                if key in seen:
                    continue
                seen.add(key)
            result.append(value)
        contains = schema.get("contains")
        room = not isinstance(max_items, int) or len(result) < max_items
        if isinstance(contains, dict) and contains and room:
            result.append(self.value(contains, _singular_name(name), fakes, depth + 1, refs))
        return result

    @staticmethod
    def _plain_list(words: set[str], count: int, fakes: Fakes) -> list[Any]:
        """Items for an array whose items are not described: numbers, or a matrix by name."""
        rng = fakes.rng
        if words & _MATRIX_WORDS:
            size = max(count, 2)
            return [[rng.randint(0, 9) for _ in range(size)] for _ in range(size)]
        return [rng.randint(1, 20) for _ in range(max(count, 2))]

    def _plausible(self, name: str, description: str, fakes: Fakes) -> Any:
        """A value for a schema that says nothing about it (`{}`), judged from the name."""
        kind = string_kind(name, description, None)
        if kind is not None:
            return fakes.text(kind)
        low, high, _ = number_range(name, integer=True)
        if (low, high) != DEFAULT_INTEGER_RANGE:
            return fakes.rng.randint(int(low), int(high))
        return fakes.word()


def _singular_name(name: str) -> str:
    """The name for one item of an array called `name` (`tags` -> `tag`)."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 3:
        return name[:-1]
    return name


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, bool):
        return ("bool", value)
    return value
