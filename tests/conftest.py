"""Shared fixtures: the demo photos, fetched once per session into a cache dir."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_sources() -> dict[str, Path]:
    """name -> path of the demo photos (env AMVA_DEMO_SOURCES, default resources/demo)."""
    from amva.datasets.demo import fetch_sources

    default = Path(__file__).resolve().parents[1] / "resources" / "demo"
    return fetch_sources(Path(os.environ.get("AMVA_DEMO_SOURCES", default)))
