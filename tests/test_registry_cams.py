"""Each CAM method is declared once, on its class: the schema, config/README.md and the workflow agree
with the records, and a method of one's own (a plugin module) runs through the config and the workflow."""

import os
import re
from typing import ClassVar, get_args

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, link_photos, snakemake, tiny_config

from amva.cam import METHODS, BaseCAM, Option, register
from amva.cam.targets import TARGETS
from amva.io import read_dataset
from amva.models import to_tensor

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
CAMS = SCHEMA["properties"]["cams"]["additionalProperties"]["properties"]
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def json_type(kind) -> str | list[str]:
    """The schema's ``type`` of an option's Python type (a list for a union such as ``int | None``)."""
    return [JSON_TYPES[t] for t in get_args(kind)] if get_args(kind) else JSON_TYPES[kind]


def cams_table() -> dict[str, list[str]]:
    """config/README.md's ``cams`` table: key -> [default, meaning]."""
    section = (ROOT / "config/README.md").read_text().split("## `cams`")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| (.*) \|$", section, flags=re.M)
    return {key: [default, meaning] for key, default, meaning in rows}


def test_schema_names_the_builtin_methods_and_targets():
    assert set(CAMS["method"]["examples"]) == set(METHODS)
    assert set(CAMS["target"]["enum"]) == {"default", *TARGETS}
    assert all(cls.default_target in {None, *TARGETS} for cls in METHODS.values())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_option_is_in_the_schema_with_its_type_and_no_default(method):
    for name, option in METHODS[method].options.items():
        prop = CAMS[name]
        if option.choices:
            assert prop["enum"] == list(option.choices), name
        else:
            assert prop["type"] == json_type(option.type), name
        assert "default" not in prop, f"{name}: a schema default would change other methods' params"


def test_the_documented_table_lists_every_method_and_option_with_its_default():
    table = cams_table()
    for name, cls in METHODS.items():
        assert f"`{name}`" in table["method"][1], name
        for key, option in cls.options.items():
            shown = "null" if option.default is None else option.default  # YAML
            shown = str(shown).lower() if isinstance(shown, bool) else shown
            assert table[key][0] == f"`{shown}`", key
    assert table["batch_size"][0] == "by device: `4`, Score-CAM `1`; 16× on CUDA"
    assert BaseCAM.default_batch_size == 4 and METHODS["scorecam"].default_batch_size == 1


def test_a_record_is_checked_when_it_registers():
    class Nameless(BaseCAM):
        default_target = None

    with pytest.raises(TypeError, match="declares a name and a default_target"):
        register(Nameless)

    class Twice(BaseCAM):
        name, default_target = "gradcam", "self_projection"

    with pytest.raises(ValueError, match="'gradcam' is registered already, by GradCAM"):
        register(Twice)

    class Shadowing(BaseCAM):
        name, default_target = "shadowing", None
        options: ClassVar = {"weights": Option(float, 1.0, "clashes with BaseCAM.weights")}

    with pytest.raises(TypeError, match=r"options \['weights'\] would shadow"):
        register(Shadowing)
    assert "shadowing" not in METHODS


PLUGIN = '''"""A toy CAM: every channel weighs the same, so the map is the channel mean."""

import torch

from amva.cam import BaseCAM, Option, register


@register
class OnesCAM(BaseCAM):
    name = "ones"
    default_target = None
    options = {"weight": Option(float, 1.0, "every channel's weight")}

    def weights(self, x, acts, emb, grads):
        return torch.full(acts.shape[:2], float(self.weight), dtype=acts.dtype)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """``AMVA_PLUGINS=toycam``, with toycam.py on the path of Snakemake and its jobs (never imported here)."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins/toycam.py").write_text(PLUGIN)
    monkeypatch.setenv("AMVA_PLUGINS", "toycam")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "plugins"), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def test_a_plugin_cam_runs_through_the_config_and_the_workflow(plugin, demo_sources, sface):
    """The toy method's option travels from the config to its class; its maps are the channel mean."""
    workdir = plugin
    cfg = tiny_config(link_photos(workdir, demo_sources))
    cfg["fiqa"] = {"sharpness": {"method": "sharpness"}}
    cfg["cams"] = {"toy": {"method": "ones", "weight": 2.0, "channel_weights": True}}
    proc = snakemake(workdir, "--cores", "2", "results/tiny/sface/toy/variation/sharpness.nc", config=cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    maps = read_dataset(workdir / "results/tiny/sface/cam/toy.nc")
    assert maps.attrs["cam_method"] == "ones" and maps.sizes["image"] == 20
    assert (maps["channel_weight"] == 2.0).all() and "channel_score" not in maps
    # equal weights give the channel mean's map: what the weights add is nothing
    np.testing.assert_allclose(maps["baseline_r"], 1.0, atol=1e-6)
    ids = maps["image"].values[:3]
    faces = read_dataset(workdir / "results/tiny/faces.nc")
    with torch.inference_mode():
        acts = sface.features(to_tensor(faces["pixels"].sel(image=ids).values)).numpy()
    mean = np.maximum(acts.mean(axis=1), 0)
    lo, hi = mean.min(axis=(1, 2), keepdims=True), mean.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(maps["maps_native"].sel(image=ids).values, (mean - lo) / (hi - lo), atol=1e-5)
    assert read_dataset(workdir / "results/tiny/sface/toy/variation/sharpness.nc")["d_amv"].notnull().all()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"method": "ones", "weight": "heavy"}, "config cams.bad: weight = 'heavy': expected float"),
        ({"method": "ones", "masks_per_pass": 8}, "masks_per_pass: not an option of CAM method 'ones'"),
        ({"method": "ones", "target": "self_cosine"}, "CAM method 'ones' uses no target"),
        ({"method": "nope"}, "unknown CAM method 'nope'; choose one of ['activation_mean', 'eigencam', 'gradcam', "),
    ],
)
def test_a_bad_entry_is_refused_before_any_job_with_its_key(plugin, demo_sources, entry, message):
    cfg = tiny_config(next(iter(demo_sources.values())).parent)
    cfg["cams"] = {"bad": entry}
    proc = snakemake(plugin, "-n", config=cfg)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
