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


@pytest.fixture(scope="session")
def sface():
    """The real SFace model, loaded once."""
    from amva.models.sface import load_sface

    return load_sface()


@pytest.fixture(scope="session")
def demo(demo_sources):
    """The full demo ladder as faces and pairs datasets."""
    from amva.datasets.build import build_dataset

    spec = {"format": "demo", "severities": [1, 2, 3]}
    faces, pairs, rejected = build_dataset(spec, next(iter(demo_sources.values())).parent, seed=0)
    return faces, pairs, rejected
