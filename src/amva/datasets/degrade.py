"""Controlled degradations of an aligned 112x112 RGB uint8 face.

Every degradation takes ``(face, severity, rng)`` and is deterministic given
the generator's state; severity 0 returns an unchanged copy. Parameters are
chosen so severity 3 clearly hurts face recognition while the face stays
recognisable-ish to a person (values in pixels of the 112 px crop):

==============  =========================================  =====  =====  =====
kind            parameter                                  sev 1  sev 2  sev 3
==============  =========================================  =====  =====  =====
gaussian_blur   Gaussian sigma (px)                        1.0    2.5    4.5
motion_blur     line length (px), random angle             5      9      15
gaussian_noise  noise sigma (grey levels), per channel     10     25     50
jpeg            cv2 JPEG quality                           30     12     4
downscale       down (area) then up (bilinear) factor      2      4      8
occlusion       mask top edge y (px); eyes at y~52          84     68     58
underexposure   exposure change in linear light (EV)       -2     -3     -4
overexposure    exposure change in linear light (EV)       +1     +1.5   +2
contrast        contrast kept around the mean (fraction)   0.5    0.3    0.15
rotation        in-plane angle about centre (deg, +/-)     10     20     35
==============  =========================================  =====  =====  =====

Another alignment template (dlib's 150 px chip) gets the same degradations in face
units: pass ``frame``, the similarity from ArcFace-112 coordinates to the chip's. Lengths
(blur sigma, motion length, downscale factor) scale with it, the occluder's outline and
the rotation centre are mapped through it; pixel-wise changes are the same.

Every degradation gives the same bytes on every CPU: blurs, resizing and the rotation are
integer arithmetic (:mod:`amva.datasets.fixed_point`), exposure is a table of 256 levels whose
entries lie far from a rounding boundary, contrast divides an exact integer sum, noise adds
numpy's seeded normal draws, JPEG is libjpeg-turbo's integer DCT and the occluder is OpenCV's
integer polygon fill.

Exposure changes act on linearised sRGB and re-encode to 8 bit, so
underexposure crushes shadows into few levels and overexposure clips
highlights to white, as a camera would. Occlusion is a flat light-blue
surgical-mask shape over the lower face rising towards the eyes; rotation
fills the uncovered corners with black, like the alignment border.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from amva.datasets import fixed_point

__all__ = ["DEGRADATIONS", "PARAMS", "SEVERITIES", "degrade"]

SEVERITIES: tuple[int, ...] = (1, 2, 3)

PARAMS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (1.0, 2.5, 4.5),
    "motion_blur": (5, 9, 15),
    "gaussian_noise": (10.0, 25.0, 50.0),
    "jpeg": (30, 12, 4),
    "downscale": (2, 4, 8),
    "occlusion": (84, 68, 58),
    "underexposure": (-2.0, -3.0, -4.0),
    "overexposure": (1.0, 1.5, 2.0),
    "contrast": (0.5, 0.3, 0.15),
    "rotation": (10.0, 20.0, 35.0),
}
"""Severity s uses ``PARAMS[kind][s - 1]`` (see the module table)."""

_MASK_RGB = (160, 190, 215)

Frame = np.ndarray
"""(2, 3) similarity from ArcFace-112 template coordinates to the face's pixels."""


def arcface_frame(face: np.ndarray) -> Frame:
    """The frame of an ArcFace crop of any size: a scaling by ``width / 112``."""
    return np.array([[face.shape[1] / 112.0, 0.0, 0.0], [0.0, face.shape[1] / 112.0, 0.0]])


def _scale(frame: Frame) -> float:
    (a, b, _), (d, e, _) = frame.tolist()
    return math.sqrt(abs(a * e - b * d))


def _odd(length: float) -> int:
    return 2 * round((length - 1) / 2) + 1


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def gaussian_blur(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Out-of-focus / low-detail capture."""
    sigma = PARAMS["gaussian_blur"][severity - 1] * _scale(frame)
    h, w = face.shape[:2]
    return fixed_point.resample(face, fixed_point.gaussian_taps(h, sigma), fixed_point.gaussian_taps(w, sigma))


def line_kernel(length: int, degrees: float) -> np.ndarray:
    """A ``length`` px line through the centre of a (length, length) kernel at ``degrees``, as
    integer weights summing to ``fixed_point.ONE``: ``length`` unit-spaced points along the line,
    each spread bilinearly over its four pixels."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    centre = (length - 1) / 2
    kernel = np.zeros((length, length))
    for t in range(length):
        x, y = centre + (t - centre) * cos, centre + (t - centre) * sin
        x0, y0 = math.floor(x), math.floor(y)
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                if 0 <= yy < length and 0 <= xx < length:
                    kernel[yy, xx] += wy * wx
    flat = kernel.ravel()
    return fixed_point.quantise(flat / math.fsum(flat.tolist())).reshape(kernel.shape)


def motion_blur(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Camera or subject motion: a line kernel at a random angle."""
    length = _odd(PARAMS["motion_blur"][severity - 1] * _scale(frame))
    return fixed_point.convolve(face, line_kernel(length, float(rng.uniform(0, 180))))


def gaussian_noise(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Sensor noise (low light, high ISO)."""
    sigma = PARAMS["gaussian_noise"][severity - 1]
    return _to_u8(face + rng.normal(0.0, sigma, face.shape))


def jpeg(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Compression blocking and colour bleeding."""
    quality = int(PARAMS["jpeg"][severity - 1])
    bgr = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)  # the encoder's YCbCr assumes BGR
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def downscale(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Low resolution (far away / small face) brought back to the model's input size."""
    factor = PARAMS["downscale"][severity - 1] * _scale(frame)
    h, w = face.shape[:2]
    sh, sw = max(1, round(h / factor)), max(1, round(w / factor))
    small = fixed_point.resample(face, fixed_point.area_taps(h, sh), fixed_point.area_taps(w, sw))
    return fixed_point.resample(small, fixed_point.linear_taps(sh, h), fixed_point.linear_taps(sw, w))


def occlusion(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """A surgical-mask-like occluder from the chin up to ``top`` (ArcFace template frame)."""
    top = PARAMS["occlusion"][severity - 1]
    pts = np.array(
        [(8, top + 10), (30, top + 1), (56, top), (82, top + 1), (104, top + 10), (100, 112), (12, 112)],
        dtype=np.float64,
    )
    out = face.copy()
    outline = pts @ frame[:, :2].T + frame[:, 2]
    cv2.fillPoly(out, [np.rint(outline).astype(np.int32)], _MASK_RGB, lineType=cv2.LINE_AA)
    return out


def exposure_table(ev: float) -> tuple[np.ndarray, float]:
    """The 256-entry table of :func:`_exposure` and its distance from a rounding boundary.

    sRGB's linear segment maps level ``l`` to exactly ``l * 2**ev``, a half-integer for some
    levels: entries within 1e-9 of one are such ties and round half to even. Every other entry,
    computed with the C library's ``pow`` one value at a time, lies at least the returned margin
    (grey levels) from a half-integer, so a last-bit difference between two libraries' ``pow``
    cannot change the table."""
    values = []
    for level in range(256):
        x = level / 255.0
        lin = x / 12.92 if x <= 0.04045 else math.pow((x + 0.055) / 1.055, 2.4)
        lin = min(max(lin * 2.0**ev, 0.0), 1.0)
        values.append(255.0 * (lin * 12.92 if lin <= 0.0031308 else 1.055 * math.pow(lin, 1 / 2.4) - 0.055))
    raw = np.array(values)
    gap = np.abs(raw - np.floor(raw) - 0.5)
    tie = gap < 1e-9
    raw = np.where(tie, np.floor(raw) + 0.5, raw)
    return _to_u8(raw), float(gap[~tie].min())


def _exposure(face: np.ndarray, ev: float) -> np.ndarray:
    """Scale linear light by 2**ev (sRGB decoded/encoded), clip, requantise: a table per level."""
    return exposure_table(ev)[0][face]


def underexposure(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Too dark: shadows crushed into few grey levels."""
    return _exposure(face, PARAMS["underexposure"][severity - 1])


def overexposure(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Too bright: highlights clipped to white."""
    return _exposure(face, PARAMS["overexposure"][severity - 1])


def contrast(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Haze / flat lighting: intensities pulled towards the image mean."""
    keep = PARAMS["contrast"][severity - 1]
    pixels = face.reshape(-1, face.shape[-1])
    mean = pixels.sum(0, dtype=np.int64) / len(pixels)  # an exact integer sum, one division
    return _to_u8(mean + keep * (face - mean))


def rotation(face: np.ndarray, severity: int, rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Residual in-plane roll the alignment did not remove; direction random."""
    h, w = face.shape[:2]
    angle = PARAMS["rotation"][severity - 1] * (1.0 if rng.random() < 0.5 else -1.0)
    (a, b, c), (d, e, f) = frame.tolist()
    cx, cy = a * (111 / 2) + b * (111 / 2) + c, d * (111 / 2) + e * (111 / 2) + f  # the ArcFace crop's centre
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rot = np.array([[cos, sin, (1 - cos) * cx - sin * cy], [-sin, cos, sin * cx + (1 - cos) * cy]])
    return fixed_point.warp_affine(face, rot, (w, h))


DEGRADATIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator, Frame], np.ndarray]] = {
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "gaussian_noise": gaussian_noise,
    "jpeg": jpeg,
    "downscale": downscale,
    "occlusion": occlusion,
    "underexposure": underexposure,
    "overexposure": overexposure,
    "contrast": contrast,
    "rotation": rotation,
}
"""Every kind, in a fixed order (the demo's order)."""


def degrade(
    face_rgb: np.ndarray, kind: str, severity: int, rng: np.random.Generator, frame: Frame | None = None
) -> np.ndarray:
    """Apply ``kind`` at ``severity`` (0 = unchanged copy) to an RGB uint8 face.

    ``frame`` places the ArcFace-112 template in the face (default: an ArcFace crop)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; valid kinds: {', '.join(DEGRADATIONS)}")
    if face_rgb.dtype != np.uint8 or face_rgb.ndim != 3 or face_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) face, got {face_rgb.dtype} {face_rgb.shape}")
    top = len(PARAMS[kind])
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 0 <= severity <= top:
        raise ValueError(f"severity for {kind!r} must be an integer in 0..{top}, got {severity!r}")
    if severity == 0:
        return face_rgb.copy()
    out = DEGRADATIONS[kind](face_rgb, int(severity), rng, arcface_frame(face_rgb) if frame is None else frame)
    assert out.shape == face_rgb.shape and out.dtype == np.uint8
    return out
