"""OFIQ-style measures: mappings at OFIQ's anchor points, hand-made images, the demo ladder.

Cheek zones of illumination uniformity and natural colour, derived by hand from OFIQ 1.0.x
(github.com/BSI-OFIQ/OFIQ-Project, paths under OFIQlib/) on the ArcFace 112x112 template
(``amva.datasets.align.ARCFACE_TEMPLATE``):

1. Landmarks are whole pixels. ``OFIQ::LandmarkPoint`` holds ``int16_t x, y``
   (include/ofiq_structs.h), and ``alignImage`` (modules/utils/src/utils.cpp) stores each
   aligned landmark as ``round(p.x)``, ``round(p.y)`` (C ``round``: halves away from zero):
       image-left eye   (38.2946, 51.6963) -> (38, 52)
       image-right eye  (73.5318, 51.5014) -> (74, 52)
       mouth corners    (41.5493, 92.3655) -> (42, 92),  (70.7299, 92.2041) -> (71, 92)
2. Centres are rounded integer means: ``FaceMeasures::GetMiddle``
   (modules/landmarks/src/FaceMeasures.cpp) sums the int coordinates and keeps
   ``int16(round(float(sum) / float(count)))``. OFIQ's eye centres are GetMiddle of ADNet's eye
   corners (60/64, 68/72); amva's template eye points are the centres already. OFIQ's mouth centre
   is GetMiddle over the MOUTH_CENTER pair (ADNet 90/94, the ``vector<LandmarkPair>`` overload in
   FaceMeasures.h); amva uses the two mouth corners:
       mouth centre = (round(113 / 2), round(184 / 2)) = (round(56.5), 92) = (57, 92)
3. ``CalculateReferencePoints`` (modules/utils/src/image_utils.cpp), ``GetDistance`` = sqrt(dx^2 + dy^2):
       inter-eye distance IED = |(74, 52) - (38, 52)| = 36
       eye midpoint = GetMiddle((38, 52), (74, 52)) = (round(112 / 2), round(104 / 2)) = (56, 52)
       eye-mouth distance EMD = |(57, 92) - (56, 52)| = sqrt(1 + 1600) = 40.0125
4. ``CalculateRegionOfInterest`` (image_utils.cpp) truncates only here (``static_cast<int>``):
       side = int(0.3 * 36) = int(10.8) = 10,  down = int(40.0125 / 2) = int(20.006) = 20
       left zone  (image-left eye):  x = 38,           y = 52 + 20 = 72
       right zone (image-right eye): x = 74 - 10 = 64, y = 52 + 20 = 72
   ``cv::Rect(x, y, 10, 10)`` covers columns x..x+9 and rows y..y+9: columns 38..47 and 64..73,
   rows 72..81. The former fractional arithmetic, truncated at the end, gave (38, 71) and (63, 71).

At 224 px (template x 2): eyes (77, 103) and (147, 103), mouth corners (83, 185) and (141, 184),
mouth centre (112, round(184.5)) = (112, 185), IED 70, eye midpoint (112, 103), EMD 82,
side int(21.0) = 21, down 41: zones (77, 144) and (126, 144). Rounding the half to even
(``np.round``) would give mouth y 184, EMD 81, down 40 and zones one pixel higher.

Values. IlluminationUniformity.cpp: ``u = sum(min(hist_left, hist_right))`` of the zones'
normalised luminance histograms, quality ``round(100 u^0.3)``. Ten black pixels in one zone
and none in the other: u = min(0.1, 0) + min(0.9, 1) = 0.9, quality 96.89 -> 97. Zones filled
with two different colours: u = 0 -> 0, while a one-pixel shift would bring at least ten
pixels of the shared background into each zone (u >= 0.1 -> >= 50). NaturalColour.cpp: mean
R, G, B over both zones (200 pixels) -> CIELab -> box distance d -> ``200 (1 - sig(d, 0, 10))``,
rounded (Measure.h ``ScalarConversion``); ten black pixels in a zone of colour M make the mean
0.95 M exactly, so the value equals that of a flat image of colour 0.95 M.
"""

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
    # R = G = B everywhere is not colour (OFIQ's IsColoured, NaturalColour.cpp): d = 0, quality 100 ...
    assert nat["natural_colour"][0] == 0 and q("ofiq_natural_colour", grey)[0] == 100
    # ... but one coloured pixel, even outside the zones, makes it colour again: a neutral grey in the
    # zones has a* < 0 by a hair (D50 rounding), the worst native value 100
    tinted = grey.clone()
    tinted[0, 0, 0, 0] += 1
    assert ofiq.native(tinted)["natural_colour"][0] == 100 and q("ofiq_natural_colour", tinted)[0] < 0.01


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


def paint(img: torch.Tensor, x0: int, x1: int, y0: int, y1: int, rgb) -> torch.Tensor:
    """``img`` with columns x0..x1-1 and rows y0..y1-1 set to one colour."""
    img = img.clone()
    img[..., y0:y1, x0:x1] = torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1)
    return img


ZONES_112 = ((38, 72, 10), (64, 72, 10))
"""(x, y, side) of the left and right cheek zones at 112 px, derived in the module docstring."""


def test_zone_geometry_is_ofiqs_integer_arithmetic():
    """The hand derivation of the module docstring, step by step."""
    np.testing.assert_array_equal(ofiq._c_round([0.5, 1.5, 2.5, 56.5, -0.5, -2.5, 51.4]), [1, 2, 3, 57, -1, -3, 51])
    np.testing.assert_array_equal(ofiq._middle([[42, 92], [71, 92]]), [57, 92])
    np.testing.assert_array_equal(ofiq._middle([[38, 52], [74, 52]]), [56, 52])
    assert ofiq._reference_points(112) == ((38, 52), (74, 52), (57, 92))
    assert ofiq._zones(112) == ZONES_112
    assert ofiq._reference_points(224) == ((77, 103), (147, 103), (112, 185))
    assert ofiq._zones(224) == ((77, 144, 21), (126, 144, 21))


SKIN = [220, 180, 100]  # a* ~ 8.0 in the box, b* ~ 46.0 above it: d ~ 11.0 moves with the zones' mean
BLACK = [0, 0, 0]


@pytest.mark.parametrize(
    ("where", "rect", "inside"),
    [
        # (x0, x1, y0, y1) painted black; inside: the ten pixels fall in a zone
        ("left zone, first column", (38, 39, 72, 82), True),
        ("left of the left zone", (37, 38, 72, 82), False),
        ("left zone, last column", (47, 48, 72, 82), True),
        ("right of the left zone", (48, 49, 72, 82), False),
        ("left zone, top row", (38, 48, 72, 73), True),
        ("above the left zone", (38, 48, 71, 72), False),
        ("left zone, bottom row", (38, 48, 81, 82), True),
        ("below the left zone", (38, 48, 82, 83), False),
        ("left of the right zone", (63, 64, 72, 82), False),
        ("right zone, first column", (64, 65, 72, 82), True),
        ("right zone, last column", (73, 74, 72, 82), True),
        ("right of the right zone", (74, 75, 72, 82), False),
        ("above the right zone", (64, 74, 71, 72), False),
        ("right zone, bottom row", (64, 74, 81, 82), True),
    ],
)
def test_zone_edges_to_the_pixel(where, rect, inside):
    img = paint(flat(SKIN), *rect, BLACK)
    u = 0.9 if inside else 1.0
    assert ofiq.native(img)["illumination_uniformity"][0] == pytest.approx(u), where
    assert q("ofiq_illumination_uniformity", img, rounded=True)[0] == (97 if inside else 100), where
    mean = [0.95 * c for c in SKIN] if inside else SKIN  # 10 of the 200 zone pixels black
    expected = ofiq.native(flat(mean))["natural_colour"][0]
    assert ofiq.native(img)["natural_colour"][0] == pytest.approx(expected, abs=1e-9), where
    assert expected == pytest.approx(9.145 if inside else 11.021, abs=1e-3)


def test_zones_filled_exactly():
    """Each zone one colour, a shared background around them: nothing of the background enters."""
    left, right = [200, 150, 120], [240, 190, 160]  # mean (220, 170, 140)
    img = flat([0, 200, 0])  # green background, a* < 0
    for (x, y, s), rgb in zip(ZONES_112, (left, right), strict=True):
        img = paint(img, x, x + s, y, y + s, rgb)
    nat = ofiq.native(img)
    assert nat["illumination_uniformity"][0] == 0.0  # disjoint histograms
    assert q("ofiq_illumination_uniformity", img)[0] == 0.0
    assert nat["natural_colour"][0] == pytest.approx(ofiq.native(flat([220, 170, 140]))["natural_colour"][0])
    assert q("ofiq_natural_colour", img, rounded=True)[0] == 100  # the mean is in the skin box
    # a green one-pixel ring right around each zone and black beyond it change nothing
    ringed = flat(BLACK)
    for (x, y, s), rgb in zip(ZONES_112, (left, right), strict=True):
        ringed = paint(paint(ringed, x - 1, x + s + 1, y - 1, y + s + 1, [0, 200, 0]), x, x + s, y, y + s, rgb)
    for name in ("illumination_uniformity", "natural_colour"):
        assert ofiq.native(ringed)[name][0] == nat[name][0], name


def test_zone_measures_map_like_ofiq():
    """round(100 u^0.3) and ScalarConversion(h=200, a=1, s=-1, x0=0, w=10, round) of Measure.h."""
    u = np.array([0.0, 0.1, 0.9, 1.0])
    np.testing.assert_allclose(ofiq.MAPPINGS["illumination_uniformity"](u), [0.0, 50.119, 96.889, 100.0], atol=1e-3)
    d = np.array([0.0, 9.145, 10.0, 11.021, 20.0, 100.0])
    # 200 (1 - 1 / (1 + exp(-d / 10))) = 200 / (1 + exp(d / 10))
    np.testing.assert_allclose(ofiq.MAPPINGS["natural_colour"](d), 200 / (1 + np.exp(d / 10)))
    np.testing.assert_array_equal(np.floor(ofiq.MAPPINGS["natural_colour"](d) + 0.5), [100, 57, 54, 50, 24, 0])
    img = paint(flat(SKIN), 73, 74, 72, 82, BLACK)
    assert q("ofiq_natural_colour", img, rounded=True)[0] == 57
    assert q("ofiq_natural_colour", flat(SKIN), rounded=True)[0] == 50


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
