"""Can the maps be trusted? Map similarity against scikit-image and scipy, cascading randomisation on the
real models, faithfulness on a toy model whose embedding reads one region, the null arm of the statistics,
and the report's words."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

from amva.cam import make_cam
from amva.cam.base import BaseCAM
from amva.cam.faithfulness import Embedder, Perturbation, curves, image_seed
from amva.cam.randomise import ALL, HEAD, blocks, cascade, randomised
from amva.cam.similarity import spearman, ssim
from amva.models import to_tensor
from amva.report.summary import summary_table
from amva.report.trust import forest_chart, trust_sentences, trust_table
from amva.trust import SANITY_LIMIT, trust_dataset


def _maps(seed: int, n: int = 4, size: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = F.avg_pool2d(torch.from_numpy(rng.random((n, 1, size, size))), 5, 1, 2)[:, 0].numpy()
    out = np.maximum(smooth - 0.5, 0)  # ReLU'd maps: many tied zeros, as real CAMs
    return out / out.reshape(n, -1).max(1)[:, None, None]


def test_ssim_equals_scikit_image():
    a, b = _maps(0), _maps(1)
    b[1] = a[1] * 0.7 + b[1] * 0.3  # one similar pair
    mine = ssim(a, b)
    reference = [structural_similarity(x, y, data_range=1.0) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(mine, reference, atol=1e-6, rtol=0)
    assert ssim(a, a) == pytest.approx(np.ones(len(a)))


def test_spearman_equals_scipy_with_ties_and_is_nan_for_a_constant_map():
    a, b = _maps(2), _maps(3)
    reference = [spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(spearman(a, b), reference, atol=1e-12)
    b[0] = 0.0
    assert np.isnan(spearman(a, b)[0])


def test_sface_cascade_names_its_blocks_and_randomises_reproducibly(sface):
    steps, note = cascade(sface, sface.default_cam_layer, 3)
    assert [s.name for s in steps] == [HEAD, "body.conv_14", "body.conv_14_dw", ALL]
    assert steps[0].blocks == ("bn1", "fc", "bn_fc")
    assert set(steps[0].blocks) < set(steps[1].blocks) < set(steps[2].blocks) < set(steps[-1].blocks)
    assert steps[-1].blocks == tuple(blocks(sface)) and "body.conv_14" in note
    before = {k: v.clone() for k, v in sface.state_dict().items()}
    one, again, other = (randomised(sface, steps[1], seed) for seed in (0, 0, 1))
    assert all(torch.equal(before[k], v) for k, v in sface.state_dict().items())  # the model itself untouched
    assert torch.equal(one.fc.weight, again.fc.weight) and not torch.equal(one.fc.weight, other.fc.weight)
    assert torch.equal(one.body.conv_13[0].weight, sface.body.conv_13[0].weight)  # below the step: trained
    deeper = randomised(sface, steps[2], 0)
    assert torch.equal(deeper.fc.weight, one.fc.weight)  # a block keeps its random values in later steps
    bn = deeper.body.conv_14.bn if hasattr(deeper.body.conv_14, "bn") else deeper.bn1
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    by_name, _ = cascade(sface, sface.default_cam_layer, "body.conv_13")
    assert [s.name for s in by_name] == [HEAD, "body.conv_14", "body.conv_14_dw", "body.conv_13", ALL]
    with pytest.raises(ValueError, match=r"names no block .* valid: body.conv_14, body.conv_14_dw, body.conv_13"):
        cascade(sface, sface.default_cam_layer, "fc")  # above the CAM layer: the head holds it


def test_iresnet_and_dlib_cascades_start_at_their_cam_layer():
    from amva.models.dlib import DlibResNet
    from amva.models.iresnet import IResNet

    iresnet = IResNet(18)
    steps, _ = cascade(iresnet, iresnet.default_cam_layer, 2)
    assert [s.name for s in steps] == [HEAD, "layer4.1", ALL] and "fc" in steps[0].blocks
    container, _ = cascade(iresnet, "layer4", 2)  # a container layer: its last block holds its output
    assert [s.name for s in container] == [s.name for s in steps]
    dlib = DlibResNet()
    steps, _ = cascade(dlib, dlib.default_cam_layer, 2)
    assert [s.name for s in steps] == [HEAD, "alevel2.2", ALL] and steps[0].blocks[-1] == "fc"


def test_a_model_without_nameable_blocks_is_randomised_whole():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    steps, note = cascade(model, "0", 3)
    assert [s.name for s in steps] == [ALL] and "every weight is randomised at once" in note


def test_onnx_nodes_can_be_randomised(tmp_path):
    """Converted ONNX graphs (Conv, BatchNorm, PReLU and Gemm nodes) reset like torch layers."""
    from amva.models import load_model
    from amva.models.sface import sface_onnx_path

    model = load_model({"kind": "onnx", "path": str(sface_onnx_path()), "mean": 0.0, "std": 1.0})
    steps, _ = cascade(model, model.default_cam_layer, 2)
    assert len(blocks(model)) > 10 and steps[-1].name == ALL
    random = randomised(model, steps[-1], 0)
    x = torch.rand(2, 3, 112, 112) * 255
    assert F.cosine_similarity(model(x), random(x)).abs().max() < 0.5


class PixelCAM(BaseCAM):
    """A "CAM" that ignores the model: the image's own brightness, pooled to the layer's grid."""

    name = "pixels_only"
    default_target = None
    options: ClassVar[dict[str, Any]] = {}

    def weights(self, x, acts, emb, grads):
        self._pooled = F.adaptive_avg_pool2d(x.mean(1, keepdim=True), acts.shape[-2:])[:, 0]
        return torch.ones(acts.shape[:2])

    def combine(self, acts, weights, grads):
        return self._pooled


def _sanity(model, cam_factory, x):
    steps, _ = cascade(model, model.default_cam_layer, 1)
    trained = cam_factory(model)(x).maps.numpy()
    by_step = [(ids, cam_factory(randomised(model, s, 0))(x).maps.numpy()) for s in steps]
    return trust_dataset(ids, ids, trained, steps, by_step, None, Perturbation(), 200, 2, 0)


ids = np.array([f"img{i}" for i in range(6)])


def test_a_cam_that_ignores_the_model_fails_the_sanity_check_and_gradcam_passes(sface, demo):
    faces = demo[0]
    x = to_tensor(faces["pixels"].isel(image=slice(0, 6 * 25, 25)).values)
    ignoring = _sanity(sface, lambda m: PixelCAM(m), x)
    assert ignoring["spearman_median"].sel(step=ALL) > 0.99
    gradcam = _sanity(sface, lambda m: make_cam(m, "gradcam", "self_projection"), x)
    assert gradcam["spearman_median"].sel(step=ALL) < SANITY_LIMIT
    table = trust_table({("demo", "sface", "pixels"): ignoring, ("demo", "sface", "gradcam"): gradcam})
    words = trust_sentences(table)
    assert "FAILS the sanity check" in words[0] and "passes the sanity check" in words[1]
    assert "6 images, 6 groups" in words[1]


class RegionNet(nn.Module):
    """An embedding of the centre 48x48 pixels only (4x4-pooled, centred): nothing else matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = F.avg_pool2d(x[:, :, 32:80, 32:80], 4).flatten(1)
        return region - region.mean(1, keepdim=True)


def test_faithfulness_of_a_map_of_the_region_the_embedding_reads():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 112, 112) * 255  # texture: the blur baseline changes every pixel
    region = np.zeros((7, 7))
    region[2:5, 2:5] = 1.0  # cells of 16 px: pixels 32..79
    maps = np.stack([region + 0.01 * np.random.default_rng(i).random((7, 7)) for i in range(3)])
    embed = Embedder(RegionNet(), (3, 112, 112), torch.device("cpu"))
    how = Perturbation(fractions=8, random_orders=3)
    seeds = [image_seed(0, f"i{i}") for i in range(3)]
    good = curves(embed, x, maps, seeds, how)
    assert (good["deletion_faithfulness"] > 0.2).all() and (good["insertion_faithfulness"] > 0.2).all()
    assert good["deletion"][:, 0] == pytest.approx(1.0) and good["insertion"][:, -1] == pytest.approx(1.0)
    constant = curves(embed, x, np.zeros((3, 7, 7)), seeds, how)
    assert constant["constant_map"].all()
    np.testing.assert_array_equal(constant["deletion_auc"], constant["deletion_random_auc_draws"][:, 0])
    np.testing.assert_array_equal(constant["insertion_auc"], constant["insertion_random_auc_draws"][:, 0])
    assert np.abs(constant["deletion_faithfulness"]).max() < 0.15  # chance, within the draws' spread
    inverted = curves(embed, x, 1.0 - maps, seeds, how)
    assert (inverted["deletion_faithfulness"] < 0).all()  # a map of everything else is worse than chance
    again = curves(embed, x, maps, seeds, how)
    np.testing.assert_array_equal(again["deletion_auc"], good["deletion_auc"])  # seeded


def _null_inputs(plant_null: bool):
    """12 people with one HIGH and one LOW image each; LOW varies outside the face in the trained
    model's maps, or (``plant_null``) in the null model's only."""
    from amva.bins import bins_dataset
    from amva.face_mask import face_mask

    rng = np.random.default_rng(0)
    n, size = 24, 112
    mask = face_mask(size, 0.5)
    ids = np.array([f"p{i // 2:02d}/{i}" for i in range(n)])
    low = np.arange(n) % 2 == 1
    maps, null = (np.where(mask.values, 0.6, 0.1) + rng.normal(0, 0.02, (n, size, size)) for _ in range(2))
    target = null if plant_null else maps
    target[low] += np.where(mask.values, 0.0, 1.0) * rng.normal(0, 0.3, (int(low.sum()), size, size))
    coords = {"image": ids, "y": np.arange(size), "x": np.arange(size)}
    as_maps = lambda v: xr.DataArray(np.clip(v, 0, 1), coords=coords, dims=("image", "y", "x"))  # noqa: E731
    quality = xr.Dataset({"quality": ("image", np.where(low, 0.0, 1.0) + rng.random(n) * 0.1)}, coords={"image": ids})
    groups = xr.DataArray([i.split("/")[0] for i in ids], coords={"image": ids}, dims="image")
    return as_maps(maps), as_maps(null), bins_dataset(quality, "matched", k=1, groups=groups, group_by="identity"), mask


def test_the_null_arm_pairs_its_resamples_with_the_trained_arm():
    from amva.variation import variation

    maps, null, bins, mask = _null_inputs(plant_null=False)
    same = variation(maps, bins, mask, 0, 200, 199, 5, null_maps=maps)
    assert same["contrast_minus_null"].item() == 0.0
    np.testing.assert_array_equal(same["contrast_minus_null_ci"].values, [0.0, 0.0])  # paired: identical arms
    assert same["null_perm_p_value"].item() == same["perm_p_value"].item()
    trained_only = variation(maps, bins, mask, 0, 200, 199, 5, null_maps=null)
    assert trained_only["perm_p_value"] < 0.05 and trained_only["null_perm_p_value"] > 0.05
    assert trained_only["contrast_minus_null_ci"].sel(bound="lower") > 0
    maps, null, bins, mask = _null_inputs(plant_null=True)
    pixels = variation(maps, bins, mask, 0, 200, 199, 5, null_maps=null)
    assert pixels["null_perm_p_value"] < 0.05 and pixels["contrast_minus_null_ci"].sel(bound="upper") < 0


def test_the_front_page_compares_every_finding_with_its_null_model():
    from amva.variation import variation

    maps, null, bins, mask = _null_inputs(plant_null=False)
    ds = variation(maps, bins, mask, 0, 200, 199, 5, null_maps=null)
    ev = xr.Dataset(
        {"pauc": ("limit", [0.1]), "auc": ("fmr", [0.2]), "auc_resolved": ("fmr", [1])},
        coords={"limit": [0.2], "fmr": [0.01]},
        attrs={"edc_status": "computed", "erc_status": "computed"},
    )
    table = summary_table({("d", "m", "c", "f"): ds}, {("d", "m", "f"): ev})
    row = table.iloc[0]
    assert row["verdict"] == "LOW > HIGH (Holm p < 0.05)"
    assert row["minus_null"] == pytest.approx(row["contrast"] - row["null_contrast"])
    from amva.report.charts import svg_text
    from amva.report.summary import findings

    text = findings(table)[0]
    assert "the trained contrast exceeds the null one for 1 of 1" in text
    assert "the null model alone reaches p &lt; 0.05 for 0" in text
    svg = svg_text(forest_chart(table))
    assert "null model (random weights)" in svg and "d · m · c · f" in svg
