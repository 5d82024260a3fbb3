"""Config values as a JSON schema means them: typed, and in one canonical key order.

Two things a user does without changing any value must not change a run: writing a
number on the command line (Snakemake hands nested ``--config`` values over as
strings, so ``{fmr: 0.1}`` arrives as ``{"fmr": "0.1"}``) and writing the same
mappings in another key order (Snakemake compares a job's params by their ``repr``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NULL = {"null", "Null", "NULL", "~", ""}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted, recursively (lists keep their order)."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    if not ref.startswith("#/"):
        raise ValueError(f"schema $ref {ref!r}: only references inside the schema (#/...) are supported")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    base = dict(_resolve(target, root))
    for key, value in schema.items():  # a referencing schema may refine the target's properties
        if key == "properties":
            value = {name: {**base.get("properties", {}).get(name, {}), **sub} for name, sub in value.items()}
            value = {**base.get("properties", {}), **value}
        if key != "$ref":
            base[key] = value
    return base


def _types(schema: Mapping[str, Any], root: Mapping[str, Any]) -> set[str]:
    """The JSON types a value of ``schema`` may take (from type, enum and oneOf/anyOf alternatives)."""
    schema = _resolve(schema, root)
    kinds = schema.get("type", [])
    found = {kinds} if isinstance(kinds, str) else set(kinds)
    for choice in schema.get("enum", []):
        found.add(_json_type(choice))
    for key in ("oneOf", "anyOf", "allOf"):
        for alternative in schema.get(key, []):
            found |= _types(alternative, root)
    return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _scalar(text: str, types: set[str]) -> Any:
    """``text`` as the first non-string type the schema allows that it parses as; else unchanged."""
    parsers = [int] if types & {"integer", "number"} else []
    parsers += [float] if "number" in types else []
    for parse in parsers:
        try:
            return parse(text)
        except ValueError:
            pass
    if "boolean" in types and text in _BOOL:
        return _BOOL[text]
    if "null" in types and text in _NULL:
        return None
    return text


def coerce(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A copy of ``value`` whose strings are turned into the numbers, booleans or nulls the schema asks for.

    Only where the schema does not also accept that string (a string in an enum, or a
    ``type: string``) is it converted, so real strings are never touched.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
            out[key] = coerce(item, sub, root) if sub is not None else item
        return out
    if isinstance(value, list):
        items = schema.get("items")
        return [coerce(v, items, root) for v in value] if isinstance(items, Mapping) else list(value)
    if isinstance(value, str):
        allowed = _types(schema, root)
        if "string" in allowed and value in schema.get("enum", [value]):
            return value
        return _scalar(value, allowed)
    return value
