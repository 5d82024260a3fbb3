"""OFIQ-style measures: mappings at OFIQ's anchor points, hand-made images, the demo ladder."""

import numpy as np
import pytest
import torch

from amva.models import to_tensor
from amva.quality import ofiq

SOURCES = ["obama", "obama2", "obama3", "biden", "astronaut"]


def flat(rgb, size=112) -> torch.Tensor:
    """A (1, 3, size, size) image of one colour."""
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, size, size).clone()


def split(left, right) -> torch.Tensor:
    """Left half (x < 56) one colour, right half another: each cheek zone lies in one half."""
    img = flat(left)
    img[..., 56:] = torch.tensor(right, dtype=torch.float32).view(3, 1, 1)
    return img


def q(name, images, **kw) -> float:
    return ofiq.METHODS[name](None, images, [f"i{i}" for i in range(len(images))], **kw)


# ---------------------------------------------------------------------------- mappings


def test_sigmoid_centre_is_half():
    assert ofiq.sigmoid(0.92, 0.92, 0.05) == pytest.approx(0.5)
    assert ofiq.sigmoid(10.0, 0.0, 1.0) > 0.9999


def test_mappings_at_ofiq_anchor_points():
    m = ofiq.MAPPINGS
    # luminance mean: double sigmoid, 50 at both centres, ~100 in the middle
    np.testing.assert_allclose(m["luminance_mean"](np.array([0.2, 0.8])), 50.0, atol=1e-3)
    assert m["luminance_mean"](0.5) > 99 and m["luminance_mean"](0.0) < 2 and m["luminance_mean"](1.0) < 2
    # luminance variance: 100 sin(pi 60v / (60v + 1)): 0 at 0, peak at v = 1/60
    assert m["luminance_variance"](0.0) == 0.0
    assert m["luminance_variance"](1 / 60) == pytest.approx(100.0)
    # under-exposure: h=120, a=0.832, s=-1, x0=0.92, w=0.05
    np.testing.assert_allclose(
        m["under_exposure_prevention"](np.array([0.0, 0.92, 1.0])), [99.84, 39.84, 0.0], atol=1e-3
    )
    # over-exposure: 1 / (p + 0.01), clipped to 0..100
    np.testing.assert_allclose(m["over_exposure_prevention"](np.array([0.0, 0.01, 0.09, 0.99])), [100, 50, 10, 1])
    # dynamic range: 12.5 bits -> quality, clipped
    np.testing.assert_allclose(m["dynamic_range"](np.array([0.0, 1.0, 8.0])), [0.0, 12.5, 100.0])
    # illumination uniformity: 100 u^0.3
    np.testing.assert_allclose(m["illumination_uniformity"](np.array([0.0, 1.0, 0.5])), [0.0, 100.0, 100 * 0.5**0.3])
    # natural colour: 200 (1 - sig(d, 0, 10)): 100 in the box, -> 0 far away
    assert m["natural_colour"](0.0) == pytest.approx(100.0)
    assert m["natural_colour"](10.0) == pytest.approx(200 * (1 - 1 / (1 + np.exp(-1))))
    assert m["natural_colour"](100.0) < 0.01
    assert set(m) == set(ofiq.MEASURES) and len(ofiq.METHODS) == len(ofiq.MEASURES)


def test_luminance_is_ofiq_y_not_lstar():
    rgb = np.array([[255, 255, 255], [0, 0, 0], [128, 128, 128], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)
    # floor(255 Y + 0.5) of linearised sRGB; L* of mid grey would be ~54% = 137, Y is 0.216 -> 55
    np.testing.assert_array_equal(ofiq.luminance(rgb), [255, 0, 55, 54, 182])


# ---------------------------------------------------------------------------- hand-made images


def test_grey_at_the_ideal_level():
    grey = flat([188, 188, 188])  # linear Y ~ 0.50
    nat = ofiq.native(grey)
    assert nat["luminance_mean"][0] == pytest.approx(0.5, abs=0.005)
    assert q("ofiq_luminance_mean", grey)[0] > 99
    assert q("ofiq_under_exposure_prevention", grey)[0] > 99
    assert q("ofiq_over_exposure_prevention", grey)[0] == 100
    assert q("ofiq_illumination_uniformity", grey)[0] == pytest.approx(100)
    # flat: no variance, no entropy, no edges
    assert q("ofiq_luminance_variance", grey)[0] == 0
    assert q("ofiq_dynamic_range", grey)[0] == 0
    assert q("sharpness", grey)[0] == 0
    # a neutral grey has a* < 0 by a hair (D50 rounding), which OFIQ maps to the worst native value 100
    assert nat["natural_colour"][0] == 100 and q("ofiq_natural_colour", grey)[0] < 0.01


def test_black_and_white_images():
    black, white = flat([0, 0, 0]), flat([255, 255, 255])
    assert q("ofiq_under_exposure_prevention", black)[0] < 1
    assert q("ofiq_under_exposure_prevention", white)[0] > 99
    assert q("ofiq_over_exposure_prevention", white)[0] == pytest.approx(1 / 1.01)  # all pixels clipped
    assert q("ofiq_over_exposure_prevention", white, rounded=True)[0] == 1
    assert q("ofiq_over_exposure_prevention", black)[0] == 100
    assert q("ofiq_luminance_mean", black)[0] < 2 and q("ofiq_luminance_mean", white)[0] < 2


def test_dynamic_range_orders_flat_two_level_and_ramp():
    half = split([0, 0, 0], [255, 255, 255])
    ramp = torch.from_numpy(np.add.outer(np.arange(112.0), np.arange(112.0)) * 255 / 222).float()
    ramp = ramp.expand(1, 3, 112, 112).clone()
    flat_q, half_q, ramp_q = (q("ofiq_dynamic_range", x)[0] for x in (flat([120] * 3), half, ramp))
    nat = ofiq.native(half)
    # two levels in (nearly) equal shares inside the face ellipse: entropy ~1 bit -> 12.5
    assert nat["dynamic_range"][0] == pytest.approx(1.0, abs=0.01)
    assert flat_q == 0 < half_q < ramp_q
    assert ramp_q > 70  # many levels, but Y of an sRGB ramp is skewed towards dark levels


def test_illumination_uniformity_and_natural_colour():
    skin = [224, 172, 140]  # a* ~ 16.6, b* ~ 24.2: inside OFIQ's box
    assert q("ofiq_natural_colour", flat(skin))[0] == pytest.approx(100)
    assert q("ofiq_natural_colour", flat([0, 200, 0]))[0] < 0.01  # a* < 0
    assert q("ofiq_illumination_uniformity", flat(skin))[0] == pytest.approx(100)
    # one cheek black, the other white: the histograms do not overlap
    assert q("ofiq_illumination_uniformity", split([0, 0, 0], [255, 255, 255]))[0] == 0
    left, right = ofiq._zones(112)
    assert left[0] + left[2] <= 56 <= right[0] and left[2] == right[2] == 10


def test_sharpness_and_rounding():
    checker = torch.from_numpy(((np.indices((112, 112)).sum(0) // 4) % 2) * 255.0).float().expand(1, 3, 112, 112)
    blurred = torch.nn.functional.avg_pool2d(checker, 5, stride=1, padding=2, count_include_pad=False)
    s = q("sharpness", torch.cat([checker, blurred]))
    assert s[0] > s[1] > 0
    images = torch.cat([flat([188] * 3), split([0, 0, 0], [255, 255, 255]), checker])
    for name in ofiq.METHODS:
        if name == "sharpness":
            continue
        exact, rounded = q(name, images), q(name, images, rounded=True)
        assert exact.dtype == np.float64 and exact.shape == (3,)
        np.testing.assert_array_equal(rounded, np.floor(exact + 0.5))
        assert np.all((exact >= 0) & (exact <= 100))


def test_native_matches_methods_and_is_batch_independent():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (4, 3, 112, 112)).astype(np.float32))
    nat = ofiq.native(images)
    for m in ofiq.MEASURES:
        name = m if m == "sharpness" else f"ofiq_{m}"
        whole = q(name, images)
        np.testing.assert_allclose(whole, ofiq.MAPPINGS[m](nat[m]))
        np.testing.assert_allclose(whole[2:], q(name, images[2:]))
    with pytest.raises(ValueError, match="square"):
        ofiq.native(images[:, :, :100])
    with pytest.raises(ValueError, match="unknown OFIQ measure"):
        ofiq.quality("brightness", images)


# ---------------------------------------------------------------------------- demo ladder


@pytest.fixture(scope="module")
def demo_scores(demo):
    faces = demo[0]
    x = to_tensor(faces["pixels"].values)
    ids = faces["image"].values.tolist()
    scores = {name: dict(zip(ids, fn(None, x, ids), strict=True)) for name, fn in ofiq.METHODS.items()}
    for s in scores.values():
        assert np.all(np.isfinite(list(s.values())))
    return scores


def _pair(scores, source, kind):
    return scores[f"{source}/original/0"], scores[f"{source}/{kind}/3"]


def test_demo_under_exposure(demo_scores):
    for source in SOURCES:
        original, dark = _pair(demo_scores["ofiq_under_exposure_prevention"], source, "underexposure")
        assert dark < original - 50, source  # -4 EV: every face pixel falls in Y 0..25
        original, dark = _pair(demo_scores["ofiq_luminance_mean"], source, "underexposure")
        assert dark < original, source


def test_demo_over_exposure(demo_scores):
    s = demo_scores["ofiq_over_exposure_prevention"]
    pairs = [_pair(s, source, "overexposure") for source in SOURCES]
    # originals have no clipped face pixels; +2 EV clips most faces (not the darkest, obama3)
    assert all(o == 100 and b <= o for o, b in pairs)
    assert sum(b < o for o, b in pairs) >= 4
    assert np.mean([b for _, b in pairs]) < 50


def test_demo_blur_sharpness_and_dynamic_range(demo_scores):
    for source in SOURCES:
        original, blurred = _pair(demo_scores["sharpness"], source, "gaussian_blur")
        assert blurred < 0.5 * original, source
        for kind in ("underexposure", "contrast"):
            original, worse = _pair(demo_scores["ofiq_dynamic_range"], source, kind)
            assert worse < original, (source, kind)
