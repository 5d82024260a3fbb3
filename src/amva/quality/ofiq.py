"""OFIQ-style capture-related quality measures on the aligned 112x112 crop.

Re-implements, in numpy, the luminance-based measures of the BSI reference implementation
of ISO/IEC 29794-5 (OFIQ, github.com/BSI-OFIQ/OFIQ-Project, ``OFIQlib/modules/measures``
and ``OFIQlib/modules/utils/src/image_utils.cpp``, release 1.0.x) plus a classic
sharpness measure. Every FIQA function returns OFIQ's *quality component value*
(0..100, higher = better); only :func:`sharpness` returns a raw value (also higher =
better), so ``HIGHER_IS_BETTER`` is ``True`` for every method here.

**Not OFIQ conformance values.** OFIQ runs its own detector, ADNet's 98 landmarks, a
616x616 alignment, a landmark-hull face region and a face-occlusion segmentation. Here
the crop is ArcFace-aligned 112x112, the region is :func:`amva.face_mask.face_mask`
(an ellipse on the template, ``margin`` 0.5 by default), the landmarks are the five of
``ARCFACE_TEMPLATE`` and there is no occlusion mask. Use the values to rank images, not
to claim ISO/IEC 29794-5 compliance.

Luminance
    OFIQ's ``GetLuminanceImageFromBGR``: relative luminance **Y** (not CIE L*) of
    linearised sRGB, ``Y = 0.2126 R + 0.7152 G + 0.0722 B``, requantised to 8 bit as
    ``floor(255 Y + 0.5)``. Y is linear light, so the dark range 0..25 of Y is sRGB
    grey up to about 89 and the bright range 247..255 is sRGB grey above about 251.

Measures (native value -> quality component value, OFIQ constants):

``luminance_mean``
    mean of Y/255 in the face region, ``m``; ``100 * sig(m, 0.2, 0.05) * (1 - sig(m, 0.8, 0.05))``
    with ``sig(x, x0, w) = 1 / (1 + exp((x0 - x) / w))`` (Luminance.cpp). 50 at m = 0.2 and
    0.8, ~100 at m = 0.5.
``luminance_variance``
    variance of Y/255 in the region, ``v``; ``100 * sin(pi * 60 v / (60 v + 1))``
    (Luminance.cpp): 0 at v = 0, 100 at v = 1/60, falling again above.
``under_exposure_prevention``
    proportion ``p`` of region pixels with Y in [0, 25] (``darkRange``); sigmoid mapping
    ``h (a + s sig(p, x0, w))`` with h = 120, a = 0.832, s = -1, x0 = 0.92, w = 0.05
    (UnderExposurePrevention.cpp and data/ofiq_config.jaxn): ~100 at p = 0, 40 at p = 0.92,
    0 at p = 1.
``over_exposure_prevention``
    proportion ``p`` with Y in [247, 255] (``lightRange``); ``1 / (p + 0.01)`` clipped to
    0..100 (OverExposurePrevention.cpp): 100 at p = 0, 50 at p = 0.01, 10 at p = 0.09.
``dynamic_range``
    Shannon entropy (bits) of the 256-bin Y histogram in the region; ``12.5 * H`` clipped
    to 0..100 (DynamicRange.cpp): 0 for a flat region, 12.5 for two equal levels, 100 for
    all 256 levels equally often.
``illumination_uniformity``
    two cheek zones below the eyes (OFIQ ``CalculateRegionOfInterest``: squares of side
    ``int(0.3 * inter-eye distance)`` at ``eye.y + int(eye-mouth distance / 2)``, from each
    eye centre towards the nose); the sum of the element-wise minimum of their normalised
    Y histograms ``u``; ``100 * u ** 0.3`` (IlluminationUniformity.cpp). Region pixels
    outside the face mask count as Y = 0, as in OFIQ's masked segmentation. As in OFIQ the
    landmarks are whole pixels (rounded, C ``round``) and the eye and mouth centres rounded
    integer means; only the side and half the eye-mouth distance are truncated. On the
    112 px template the zones are the 10x10 squares at (x, y) = (38, 72) and (64, 72), so
    ``u`` is noisy.
``natural_colour``
    mean R, G, B over the same two zones, converted as one colour to CIELab (OFIQ's
    ``ConvertBGRToCIELAB``: sRGB -> D50 XYZ with the Bradford-adapted matrix, D50 white
    0.964221/1/0.825211, and OFIQ's ``k = 24289 / 27`` in the linear branch, not
    CIE's 24389 / 27); native value = distance of (a*, b*) from the box a* in [5, 25],
    b* in [5, 35], or 100 if a* < 0 or b* < 0 (NaturalColour.cpp); mapped with
    h = 200, a = 1, s = -1, x0 = 0, w = 10, i.e. ``200 * (1 - sig(d, 0, 10))``: 100 inside
    the box. An image with R = G = B in every pixel is not colour (OFIQ's ``IsColoured``):
    d = 0, quality 100, as OFIQ gives it.
``sharpness``
    *not* OFIQ's sharpness (a random forest on Laplacian/Sobel features whose model is
    not reproduced here): variance of the 3x3 Laplacian (``cv2.Laplacian`` ksize 1,
    reflect-101 border) of the Rec. 601 grey image (``0.299 R + 0.587 G + 0.114 B``, as
    OFIQ's sharpness features), over the face region. Raw, unbounded, higher = sharper;
    additive noise raises it too.

OFIQ rounds each quality component value to an integer; pass ``rounded=True`` for that.
The default keeps the unrounded value, which ranks images without ties. The constants
were read from OFIQ's C++ sources and default configuration at the 1.0.x releases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np
import torch

from amva.datasets.align import ARCFACE_TEMPLATE
from amva.face_mask import face_mask
from amva.options import Option
from amva.quality.method import Method

__all__ = [
    "HIGHER_IS_BETTER",
    "MAPPINGS",
    "MEASURES",
    "METHODS",
    "RECORDS",
    "luminance",
    "native",
    "quality",
    "sharpness",
    "sigmoid",
]

HIGHER_IS_BETTER = True
"""Every method of this module: quality component values and sharpness rise with quality."""

MEASURES: tuple[str, ...] = (
    "luminance_mean",
    "luminance_variance",
    "under_exposure_prevention",
    "over_exposure_prevention",
    "dynamic_range",
    "illumination_uniformity",
    "natural_colour",
    "sharpness",
)

DARK_RANGE = (0, 25)  # UnderExposurePrevention.cpp, inclusive
LIGHT_RANGE = (247, 255)  # OverExposurePrevention.cpp, inclusive
_Y_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])  # GetLuminanceImageFromBGR, linear RGB
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # cv2.COLOR_BGR2GRAY
# ConvertBGRToCIELAB: linear sRGB -> XYZ (D50, Bradford-adapted) and the D50 white point
_RGB_TO_XYZ_D50 = np.array([[0.43605, 0.38508, 0.14309], [0.22249, 0.71689, 0.06062], [0.01393, 0.09710, 0.71419]])
_WHITE_D50 = np.array([0.964221, 1.0, 0.825211])
_LAB_K = 24289 / 27.0  # sic in OFIQ (CIE: 24389 / 27)
_LAB_EPS = 216 / 24389.0


def sigmoid(x: np.ndarray | float, x0: float, w: float) -> np.ndarray:
    """OFIQ's ``Sigmoid``: ``1 / (1 + exp((x0 - x) / w))``."""
    return 1.0 / (1.0 + np.exp((x0 - np.asarray(x, dtype=np.float64)) / w))


def _sigmoid_mapping(x: np.ndarray, h: float, a: float, s: float, x0: float, w: float) -> np.ndarray:
    """OFIQ's ``ScalarConversion`` without its rounding: ``h (a + s sig(x, x0, w))`` in 0..100."""
    return np.clip(h * (a + s * sigmoid(x, x0, w)), 0.0, 100.0)


def map_luminance_mean(m: np.ndarray) -> np.ndarray:
    return 100.0 * sigmoid(m, 0.2, 0.05) * (1.0 - sigmoid(m, 0.8, 0.05))


def map_luminance_variance(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return 100.0 * np.sin(np.pi * 60.0 * v / (60.0 * v + 1.0))


def map_under_exposure(p: np.ndarray) -> np.ndarray:
    return _sigmoid_mapping(p, h=120.0, a=0.832, s=-1.0, x0=0.92, w=0.05)


def map_over_exposure(p: np.ndarray) -> np.ndarray:
    return np.clip(1.0 / (np.asarray(p, dtype=np.float64) + 0.01), 0.0, 100.0)


def map_dynamic_range(h: np.ndarray) -> np.ndarray:
    return np.clip(12.5 * np.asarray(h, dtype=np.float64), 0.0, 100.0)


def map_illumination_uniformity(u: np.ndarray) -> np.ndarray:
    return 100.0 * np.power(np.asarray(u, dtype=np.float64), 0.3)


def map_natural_colour(d: np.ndarray) -> np.ndarray:
    return _sigmoid_mapping(d, h=200.0, a=1.0, s=-1.0, x0=0.0, w=10.0)


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


MAPPINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "luminance_mean": map_luminance_mean,
    "luminance_variance": map_luminance_variance,
    "under_exposure_prevention": map_under_exposure,
    "over_exposure_prevention": map_over_exposure,
    "dynamic_range": map_dynamic_range,
    "illumination_uniformity": map_illumination_uniformity,
    "natural_colour": map_natural_colour,
    "sharpness": _identity,
}
"""Native value -> quality component value (0..100; identity for ``sharpness``)."""


# ---------------------------------------------------------------------------------------
# native values


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """OFIQ's ``ColorConvert`` on values in [0, 1]."""
    return np.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


_LINEAR_LUT = _srgb_to_linear(np.arange(256) / 255.0)


def _to_rgb_u8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(N, 3, H, W)`` float in [0, 255] -> ``(N, H, W, 3)`` uint8, as OFIQ reads 8-bit images."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"expected square (N, 3, H, W) RGB images, got shape {x.shape}")
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """8-bit luminance ``floor(255 Y + 0.5)`` of ``(..., 3)`` uint8 sRGB (OFIQ's Y, not L*)."""
    y = _LINEAR_LUT[rgb] @ _Y_WEIGHTS
    return np.floor(y * 255.0 + 0.5).astype(np.uint8)


def _histograms(lum: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(N, 256)`` normalised histograms of each image's luminance inside ``mask``."""
    vals = lum[:, mask].astype(np.int64)  # (N, P)
    n, p = vals.shape
    counts = np.bincount((vals + 256 * np.arange(n)[:, None]).ravel(), minlength=256 * n)
    return counts.reshape(n, 256) / float(p)


def _c_round(x: np.ndarray | float) -> np.ndarray:
    """C's ``round`` to int64: halves go away from zero (``np.round`` sends them to the even neighbour)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def _middle(points: np.ndarray) -> np.ndarray:
    """OFIQ's ``FaceMeasures::GetMiddle``: the mean of integer points, rounded to whole pixels."""
    return _c_round(np.asarray(points, dtype=np.int64).sum(axis=0) / len(points))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """OFIQ's ``FaceMeasures::GetDistance`` of two integer points: ``sqrt(dx^2 + dy^2)``."""
    dx, dy = (int(v) for v in np.asarray(a) - np.asarray(b))
    return math.sqrt(dx * dx + dy * dy)


@lru_cache(maxsize=8)
def _reference_points(size: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Whole-pixel eye centres (image-left, image-right) and mouth centre on the template scaled to ``size``.

    OFIQ keeps landmarks as ``int16`` and ``alignImage`` rounds each aligned one (utils.cpp); the
    template's five points stand in for ADNet's, rounded the same way. OFIQ's eye centres are the
    ``GetMiddle`` of two eye corners and its mouth centre the ``GetMiddle`` of the inner-lip pair
    90/94; here the template's eye points are the centres and the mouth centre is the ``GetMiddle``
    of the two mouth corners.
    """
    pts = _c_round(ARCFACE_TEMPLATE.astype(np.float64) * (size / 112.0))
    left_eye, right_eye, mouth = pts[0], pts[1], _middle(pts[3:])
    return tuple(left_eye.tolist()), tuple(right_eye.tolist()), tuple(mouth.tolist())


@lru_cache(maxsize=8)
def _zones(size: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """OFIQ's two cheek zones ``(x, y, side)`` on the template scaled to ``size``.

    ``CalculateReferencePoints``/``CalculateRegionOfInterest`` (image_utils.cpp) on the whole-pixel
    points of :func:`_reference_points`: the image-left eye's zone starts at its centre and extends
    right, the image-right eye's zone ends just before its centre; both start
    ``int(eye-mouth distance / 2)`` below the eye, side ``int(0.3 * IED)``. Those two are the only
    truncations; every coordinate before them is a rounded integer, as in OFIQ.
    """
    left_eye, right_eye, mouth = (np.array(p) for p in _reference_points(size))
    ied = _distance(left_eye, right_eye)
    emd = _distance(_middle(np.stack([left_eye, right_eye])), mouth)
    side, down = int(0.3 * ied), int(emd / 2)
    left = (int(left_eye[0]), int(left_eye[1]) + down, side)
    right = (int(right_eye[0]) - side, int(right_eye[1]) + down, side)
    return left, right


def _zone(a: np.ndarray, zone: tuple[int, int, int]) -> np.ndarray:
    x, y, s = zone
    return a[:, y : y + s, x : x + s]


def _lab_ab(mean_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OFIQ's ``ConvertBGRToCIELAB`` of ``(N, 3)`` mean RGB in 0..255 -> (a*, b*)."""
    xyz = _srgb_to_linear(mean_rgb / 255.0) @ _RGB_TO_XYZ_D50.T / _WHITE_D50
    f = np.where(xyz <= _LAB_EPS, (_LAB_K * xyz + 16.0) / 116.0, np.cbrt(xyz))
    return 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])


def _natural_colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    da = np.maximum(np.maximum(0.0, 5.0 - a), np.maximum(0.0, a - 25.0))
    db = np.maximum(np.maximum(0.0, 5.0 - b), np.maximum(0.0, b - 35.0))
    return np.where((a >= 0) & (b >= 0), np.hypot(da, db), 100.0)


def _laplacian_variance(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    grey = rgb.astype(np.float64) @ _GREY_WEIGHTS
    out = np.empty(rgb.shape[0])
    for i, g in enumerate(grey):
        out[i] = cv2.Laplacian(g, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT_101)[mask].var()
    return out


def native(images: torch.Tensor | np.ndarray, margin: float = 0.5) -> dict[str, np.ndarray]:
    """Every measure's native value (float64, one per image) for ``(N, 3, S, S)`` RGB images.

    The face region is ``face_mask(S, margin)``.
    """
    rgb, mask = _prepare(images, margin)
    return {name: _native_one(name, rgb, mask) for name in MEASURES}


def _prepare(images: torch.Tensor | np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    rgb = _to_rgb_u8(images)
    mask = face_mask(rgb.shape[1], margin).values.astype(bool)
    if not mask.any():
        raise ValueError(f"face_mask({rgb.shape[1]}, margin={margin}) is empty")
    return rgb, mask


def _native_one(name: str, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One measure's native value for uint8 ``(N, S, S, 3)`` RGB and a boolean region mask."""
    if name == "sharpness":
        return _laplacian_variance(rgb, mask)
    lum = luminance(rgb)
    if name in ("illumination_uniformity", "natural_colour"):
        zones = _zones(rgb.shape[1])
        if name == "illumination_uniformity":
            masked_lum = np.where(mask, lum, 0).astype(np.uint8)
            full = np.ones((zones[0][2], zones[0][2]), dtype=bool)
            zh = [_histograms(_zone(masked_lum, z), full) for z in zones]
            return np.minimum(zh[0], zh[1]).sum(axis=1)
        masked_rgb = np.where(mask[None, :, :, None], rgb, 0)
        reduced = np.concatenate([_zone(masked_rgb, z) for z in zones], axis=2)
        distance = _natural_colour_distance(*_lab_ab(reduced.reshape(rgb.shape[0], -1, 3).mean(axis=1)))
        coloured = ((rgb[..., 0] != rgb[..., 1]) | (rgb[..., 0] != rgb[..., 2])).any(axis=(1, 2))
        return np.where(coloured, distance, 0.0)  # OFIQ's IsColoured: a grey image is not judged on colour
    hist = _histograms(lum, mask)
    levels = np.arange(256) / 255.0
    if name == "luminance_mean":
        return hist @ levels
    if name == "luminance_variance":
        mean = hist @ levels
        return (hist * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1)
    if name == "under_exposure_prevention":
        return hist[:, DARK_RANGE[0] : DARK_RANGE[1] + 1].sum(axis=1)
    if name == "over_exposure_prevention":
        return hist[:, LIGHT_RANGE[0] : LIGHT_RANGE[1] + 1].sum(axis=1)
    if name == "dynamic_range":
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.where(hist > 0, hist * np.log2(hist), 0.0).sum(axis=1) + 0.0
    raise ValueError(f"unknown OFIQ measure {name!r}; choose one of {MEASURES}")


def quality(name: str, images: torch.Tensor | np.ndarray, margin: float = 0.5, rounded: bool = False) -> np.ndarray:
    """Quality component value of measure ``name`` (raw value for ``sharpness``)."""
    if name not in MAPPINGS:
        raise ValueError(f"unknown OFIQ measure {name!r}; choose one of {MEASURES}")
    rgb, mask = _prepare(images, margin)
    q = MAPPINGS[name](_native_one(name, rgb, mask)).astype(np.float64)
    # np.round is half-to-even, C++ round is half-away-from-zero; values are >= 0 here
    return np.floor(q + 0.5) if rounded and name != "sharpness" else q


# ---------------------------------------------------------------------------------------
# FIQA methods: fn(model, images, ids, **params) -> (N,) float64; the FR model is unused


def _ofiq_method(measure: str, summary: str) -> Callable[..., np.ndarray]:
    """The FIQA function of one OFIQ measure: its 0..100 quality, higher = better."""

    def method(model, images: torch.Tensor, ids: list[str], margin: float = 0.5, rounded: bool = False) -> np.ndarray:
        return quality(measure, images, margin, rounded)

    method.__name__ = method.__qualname__ = f"ofiq_{measure}"
    method.__doc__ = f"OFIQ {measure.replace('_', ' ')} (0..100, {summary})."
    return method


def sharpness(model, images: torch.Tensor, ids: list[str], margin: float = 0.5) -> np.ndarray:
    """Variance of the Laplacian of the grey image inside the face mask (raw, higher = sharper)."""
    return quality("sharpness", images, margin)


_SUMMARIES = {
    "luminance_mean": "higher = better",
    "luminance_variance": "higher = better",
    "under_exposure_prevention": "higher = fewer dark pixels",
    "over_exposure_prevention": "higher = fewer bright pixels",
    "dynamic_range": "12.5 x luminance entropy in bits",
    "illumination_uniformity": "histogram overlap of the two cheek zones",
    "natural_colour": "100 when the cheeks' mean a*, b* are in the skin box",
}
METHODS: dict[str, Callable[..., np.ndarray]] = {
    **{f"ofiq_{m}": _ofiq_method(m, summary) for m, summary in _SUMMARIES.items()},
    "sharpness": sharpness,
}
"""Method name -> FIQA function."""

_MARGIN = Option(float, 0.5, "margin of the face mask the measure is taken in")
_ROUNDED = Option(bool, False, "round to integers, as OFIQ does")
RECORDS: tuple[Method, ...] = tuple(
    Method(
        name=name,
        kind="image",
        higher_is_better=HIGHER_IS_BETTER,
        fn=fn,
        options={"margin": _MARGIN} if fn is sharpness else {"margin": _MARGIN, "rounded": _ROUNDED},
    )
    for name, fn in METHODS.items()
)
"""The records of :data:`METHODS`, for the registry in :mod:`amva.quality`."""
