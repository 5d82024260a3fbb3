"""The FIQA records hold the schema's ``fiqa:`` section, config/README.md's fiqa table and the functions' defaults."""

import inspect
import re
from pathlib import Path
from types import NoneType
from typing import get_args

import yaml

from amva.quality import METHODS, REGISTRY
from amva.quality.config import import_arguments
from amva.quality.scores_file import FORMATS, import_scores
from amva.schema import _types

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
FIQA_ENTRY = SCHEMA["properties"]["fiqa"]["additionalProperties"]
JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string", NoneType: "null"}


def test_schema_method_enum_is_the_registry():
    assert FIQA_ENTRY["properties"]["method"]["enum"] == list(REGISTRY)


def test_every_option_is_a_schema_property_of_its_type():
    properties = FIQA_ENTRY["properties"]
    for record in REGISTRY.values():
        for name, option in record.options.items():
            assert name in properties, f"{record.name}.{name} is not in the schema"
            declared = {JSON_TYPES[t] for t in get_args(option.type) or (option.type,)}
            allowed = _types(properties[name], SCHEMA)
            assert allowed - {"null"} == declared - {"null"}, (
                f"{record.name}.{name}: schema {allowed}, record {declared}"
            )
            assert "null" not in allowed or "null" in declared, f"{record.name}.{name} may be null in the schema"
    assert properties["format"]["enum"] == list(FORMATS)


def test_the_schema_requires_the_required_options():
    required = {name: [k for k, o in r.options.items() if o.required] for name, r in REGISTRY.items()}
    assert {name: keys for name, keys in required.items() if keys} == {
        FIQA_ENTRY["if"]["properties"]["method"]["const"]: FIQA_ENTRY["then"]["required"]
    }


def test_record_defaults_are_the_functions_defaults():
    for record in METHODS.values():
        params = list(inspect.signature(record.fn).parameters.values())[3:]
        assert {p.name: p.default for p in params} == {k: o.default for k, o in record.options.items()}, record.name
    params = inspect.signature(import_scores).parameters.values()
    expected = {p.name: p.default for p in params if p.name not in ("ids", "path", "method")}
    assert import_arguments({"method": "scores_file", "path": "x.txt", "batch_size": 4}) == expected


def _readme_rows(heading: str) -> list[list[str]]:
    """The cells of every table row in config/README.md's section ``heading``."""
    text = (ROOT / "config/README.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|") for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)] for row in rows]  # GFM: \| is no cell border


def test_config_readme_documents_every_method_as_its_record_says():
    rows = _readme_rows("## `fiqa`")
    for record in REGISTRY.values():
        row = next((r for r in rows if f"`{record.name}`" in re.findall(r"`[^`]+`", r[0])), None)
        assert row is not None, f"{record.name} is not in config/README.md's fiqa table"
        assert row[2] == ("yes" if record.needs_model else "no"), record.name
        direction = {True: "higher = better", False: "lower", None: "`higher_is_better`"}[record.higher_is_better]
        assert direction in row[4], record.name
        documented = "".join(row[3:4] if record.kind != "imported" else [r[0] for r in rows])
        for name in record.options:
            assert f"`{name}`" in documented, f"{record.name}.{name} is not documented"
