"""Each model kind is declared once, as a record in amva.models: the schema, config/README.md and
the workflow's crop planning follow the records."""

import dataclasses

import pytest
from registry_checks import check_schema, entry_schema, readme_rows

from amva.datasets.align import ALIGN_TEMPLATES
from amva.models import KINDS, align_template, load_model
from amva.models.iresnet import LAYERS

MODELS = entry_schema("models")


def test_the_schema_names_every_kind_and_each_ones_keys():
    assert MODELS["properties"]["kind"]["enum"] == list(KINDS)
    assert set(MODELS["properties"]) == {"kind"} | {key for kind in KINDS.values() for key in kind.options}
    assert MODELS["properties"]["depth"]["enum"] == sorted(LAYERS)


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_has_its_keys_in_the_schema_and_the_readme(name):
    kind = KINDS[name]
    check_schema(kind, "models", "kind")
    rows = readme_rows("models")
    assert f"`{name}`: {kind.meaning}" in rows["kind"] or f"| `kind: {name}` | {kind.meaning}" in rows[name], name
    assert set(kind.options) <= set(rows)
    assert kind.template in ALIGN_TEMPLATES and align_template({"kind": name}) == kind.template


def test_an_entry_gets_its_kinds_defaults_and_is_refused_without_a_required_key(monkeypatch):
    seen = []
    monkeypatch.setitem(KINDS, "onnx", dataclasses.replace(KINDS["onnx"], load=seen.append))
    load_model({"kind": "onnx", "path": "m.onnx", "mean": 0.0})
    defaults = {"input_size": 112, "color_order": "RGB", "std": 127.5}
    assert seen == [{**defaults, "kind": "onnx", "path": "m.onnx", "mean": 0.0}]
    with pytest.raises(ValueError, match=r"kind 'iresnet' needs 'depth' \(the backbone depth\)"):
        load_model({"kind": "iresnet", "weights": "w.pth"})
    with pytest.raises(ValueError, match="kind 'nope' is not supported; use one of sface, iresnet, dlib, onnx"):
        align_template({"kind": "nope"})
