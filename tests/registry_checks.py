"""Checks that hold the config schema and config/README.md to the records of formats and model kinds."""

import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import yaml
from conftest import ROOT

from amva.datasets.format import Record
from amva.options import Option

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
_DUMMY = {bool: True, int: 100, float: 1.0, str: "x", list: [1]}


def entry_schema(section: str) -> dict[str, Any]:
    """The schema of one entry of a top-level mapping (``datasets``, ``models``)."""
    return SCHEMA["properties"][section]["additionalProperties"]


def readme_rows(section: str) -> dict[str, str]:
    """config/README.md's table of ``section``: each key of a row's first cell -> the whole row."""
    text = (ROOT / "config/README.md").read_text().split(f"## `{section}`")[1].split("\n## ")[0]
    rows = re.findall(r"^(\| ([^|]*) \|.*)$", text, flags=re.M)
    return {key: line for line, cell in rows for key in re.findall(r"`(?:kind: )?(\w+)`", cell)}


def json_types(prop: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema property allows (its type, its enum's values, its oneOf alternatives)."""
    kinds = prop.get("type", [])
    found = {kinds} if isinstance(kinds, str) else set(kinds)
    found |= {JSON_TYPES[type(v)] for v in prop.get("enum", [])}
    for alternative in prop.get("oneOf", []):
        found |= json_types(alternative)
    return found


def dummy(option: Option) -> Any:
    """A value the option takes."""
    if option.choices:
        return [option.choices[0]] if option.type is list else option.choices[0]
    return _DUMMY[option.type]


def check_option(key: str, option: Option, prop: Mapping[str, Any]) -> None:
    """The schema's property ``key`` has the option's type, choices, meaning and default."""
    assert JSON_TYPES[option.type] in json_types(prop), key
    if option.choices:
        allowed = prop["items"]["enum"] if option.type is list else prop["enum"]
        assert set(allowed) == set(option.choices), key
    assert option.meaning in prop.get("description", ""), f"{key}: describe it as {option.meaning!r}"
    if "default" in prop:
        default = list(option.default) if isinstance(option.default, tuple) else option.default
        assert prop["default"] == default, key
    elif option.default is not None:
        assert f"default {option.default}" in prop["description"], f"{key}: say its default {option.default}"


def check_schema(record: Record, section: str, selector: str) -> None:
    """Each of the record's keys is in the schema of ``section`` as the record says, and its required keys are.

    An entry whose ``selector`` key names the record is valid with its required keys, and with all
    its options, and refused without any one of the required keys.
    """
    schema = entry_schema(section)
    for key, option in record.options.items():
        check_option(key, option, schema["properties"][key])
    validator = jsonschema.Draft202012Validator(schema)
    minimal = {selector: record.name, **{key: dummy(record.options[key]) for key in record.required}}
    assert not list(validator.iter_errors(minimal)), record.name
    full = {**minimal, **{key: dummy(option) for key, option in record.options.items()}}
    assert not list(validator.iter_errors(full)), record.name
    for key in record.required:
        assert list(validator.iter_errors({k: v for k, v in minimal.items() if k != key})), f"{record.name}: {key}"
