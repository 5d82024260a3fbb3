"""Dataset config entry → aligned faces, pairs and rejections, whatever the format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from amva.datasets.common import Options, Read, given_pairs
from amva.datasets.faces import all_pairs, faces_dataset, rejected_table

FORMATS = ("demo", "folder", "lfw", "insightface_bin", "pair_list", "manifest")

# labels every format provides, the ones the real-data formats add, and the demo ladder's
_COMMON = ("identity", "detection_score")
_READ = ("faces_found",)
_DEMO = ("source", "degradation", "severity")


def _read(fmt: str, spec: dict[str, Any], sources: Path, seed: int, template: str) -> Read:
    opts = Options.from_spec(spec, seed, aligned=fmt == "insightface_bin", template=template)
    if fmt == "folder":
        from amva.datasets.folder import read_folder

        return Read(*read_folder(sources, opts=opts), None)
    if fmt == "lfw":
        from amva.datasets.lfw import read_lfw

        return read_lfw(sources, spec["pairs"], opts, bool(spec.get("all_images", False)))
    if fmt == "insightface_bin":
        from amva.datasets.insightface_bin import read_insightface_bin

        return read_insightface_bin(sources, opts)
    if fmt == "pair_list":
        from amva.datasets.pair_list import read_pair_list

        return read_pair_list(sources, opts, spec.get("image_list"), spec.get("pair_list"))
    if fmt == "manifest":
        from amva.datasets.manifest import read_manifest

        return read_manifest(sources, opts, spec.get("root"))
    raise ValueError(f"datasets format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")


def build_dataset(
    spec: dict[str, Any], sources: str | Path | Sequence[str], seed: int = 0, template: str = "arcface112"
) -> tuple[xr.Dataset, xr.Dataset, pd.DataFrame]:
    """Read and align a dataset as its ``format`` says; ``sources`` is its input path.

    ``sources`` may be a list (the workflow's inputs): its first item is the path.
    ``template`` is the crop the models need (``FaceModel.align_template``): the same
    detections and labels, aligned to another template, give the same images in the same order.
    """
    if not isinstance(sources, (str, Path)):
        sources = next(iter(sources))
    fmt = spec["format"]
    if fmt == "demo":
        from amva.datasets.demo import build_demo

        images, rejected = build_demo(
            Path(sources),
            severities=tuple(spec["severities"]),
            degradations=spec.get("degradations"),
            seed=seed,
            template=template,
        )
        names, pairs = _COMMON + _DEMO, None
    else:
        images, rejected, pairs = _read(fmt, spec, Path(sources), seed, template)
        names = _COMMON + _READ
    if not images:
        raise ValueError(f"{sources}: no usable face in this dataset; see rejected.csv reasons: {rejected[:3]}")
    labels = {name: np.array([getattr(im, name) for im in images]) for name in names}
    faces = faces_dataset(
        [im.id for im in images],
        np.stack([im.face for im in images]),
        np.stack([im.landmarks for im in images]),
        labels,
    )
    faces.attrs["align_template"] = template
    return faces, all_pairs(faces) if pairs is None else given_pairs(pairs), rejected_table(rejected)
