"""Dataset config entry → aligned faces, pairs and rejections, whatever the format.

A format is a reader, ``(source, spec, opts) -> Listing``, declared with its config keys in
a :class:`~amva.datasets.format.DatasetFormat` record (:data:`amva.datasets.registry.FORMATS`).
:class:`DatasetBuild` streams what it lists: faces are aligned and written ``CHUNK_IMAGES``
at a time, so a build's memory is one chunk of pixels plus the small per-image labels,
the pairs and the rejections, whatever the number of images.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from amva.datasets.align import Rejection
from amva.datasets.common import Face, Options, Pair, filter_pairs, given_pairs
from amva.datasets.faces import faces_dataset, identity_pairs, rejected_table
from amva.datasets.registry import get_format
from amva.io import write_csv, write_dataset
from amva.stream import CHUNK_IMAGES, ChunkedWriter


class DatasetBuild:
    """One dataset read as its ``format`` says; ``sources`` is its input path.

    ``sources`` may be a list (the workflow's inputs): its first item is the path.
    ``template`` is the crop the models need (``FaceModel.align_template``): the same
    detections and labels, aligned to another template, give the same images in the same
    order. :meth:`chunks` reads the faces once; :meth:`pairs` and :meth:`rejected` follow it.
    """

    def __init__(
        self, spec: Mapping[str, Any], sources: str | Path | Sequence[str], seed: int = 0, template: str = "arcface112"
    ) -> None:
        if not isinstance(sources, (str, Path)):
            sources = next(iter(sources))
        fmt = get_format(spec["format"])
        self.source = Path(sources)
        self.opts = Options.from_spec(spec, seed, aligned=fmt.prealigned(spec), template=template)
        self.listing = fmt.read(self.source, spec, self.opts)
        self.ids: list[str] = []
        self.identities: list[str] = []
        self._rejected = list(self.listing.rejected)
        self._given: list[Pair] | None = None
        self._done = False

    def chunks(self, size: int | None = CHUNK_IMAGES) -> Iterator[xr.Dataset]:
        """The aligned faces as faces.nc chunks of ``size`` images (None: one chunk); ValueError if none is usable."""
        batch: list[Face] = []
        for item in self.listing.faces:
            if isinstance(item, Rejection):
                self._rejected.append(item)
                continue
            batch.append(item)
            self.ids.append(item.id)
            self.identities.append(item.identity)
            if len(batch) == size:
                yield self._faces(batch)
                batch = []
        if batch:
            yield self._faces(batch)
        if self.listing.pairs is not None:
            self._given, dropped = filter_pairs(
                self.listing.pairs, set(self.ids), self._rejected, self.listing.pairs_source
            )
            self._rejected += dropped
        self._done = True

    def _faces(self, images: Sequence[Face]) -> xr.Dataset:
        own = {name: np.array([im.labels[name] for im in images], dtype=str) for name in self.listing.extra_labels}
        faces = faces_dataset(
            [im.id for im in images],
            np.stack([im.face for im in images]),
            np.stack([im.landmarks for im in images]),
            {**{name: np.array([getattr(im, name) for im in images]) for name in self.listing.labels}, **own},
        )
        faces.attrs["align_template"] = self.opts.template
        return faces

    def pairs(self) -> xr.Dataset:
        """The given pairs of usable images, else every genuine pair and sampled impostor pairs."""
        self._check_done()
        if self._given is not None:
            return given_pairs(self._given)
        return identity_pairs(self.ids, self.identities, self.opts.max_impostor_pairs, self.opts.seed)

    def rejected(self) -> pd.DataFrame:
        """Every input not used, with the reason (rejected.csv)."""
        self._check_done()
        return rejected_table(self._rejected)

    def _check_done(self) -> None:
        if not self._done:
            raise RuntimeError("read every chunk of the faces first: pairs and rejections depend on them")

    def write(
        self,
        faces: str | os.PathLike[str],
        pairs: str | os.PathLike[str],
        rejected: str | os.PathLike[str],
        config: Mapping[str, Any],
    ) -> dict[str, int]:
        """faces.nc chunk by chunk, then pairs.nc and rejected.csv, each atomically; what they hold, counted."""
        with ChunkedWriter(faces, config) as out, tqdm(desc="faces", unit="img", file=sys.stderr, mininterval=5) as bar:
            for chunk in self.chunks():
                out.append(chunk)
                bar.update(chunk.sizes["image"])
        made = self.pairs()
        write_dataset(made, pairs, config)
        write_csv(self.rejected(), rejected)
        counts = {key: made.attrs[key] for key in ("genuine_pairs", "impostor_pairs")}
        return {"faces": len(self.ids), **counts, "rejected": len(self._rejected)}


def build_dataset(
    spec: Mapping[str, Any], sources: str | Path | Sequence[str], seed: int = 0, template: str = "arcface112"
) -> tuple[xr.Dataset, xr.Dataset, pd.DataFrame]:
    """faces, pairs and rejections in memory, for small sets (tests, benchmarks): :class:`DatasetBuild` in one chunk."""
    build = DatasetBuild(spec, sources, seed, template)
    chunks = list(build.chunks(size=None))
    if not chunks:
        reasons = build.rejected()["reason"].tolist()[:3]
        raise ValueError(f"{build.source}: no usable face in this dataset; rejected.csv reasons: {reasons}")
    (faces,) = chunks
    return faces, build.pairs(), build.rejected()
