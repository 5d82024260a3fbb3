"""A researcher's size, end to end: 3,000 aligned faces to a report, so a size limit cannot come back
unseen (the EDC chart once refused 7,927 rows and the files took 49 kB per image and analysis).

Time is measured in bench/, not here; this test holds what must not grow with N: the report's
size and chart data, and the bytes per image of the maps, the statistics and the pairs.
"""

import re
from pathlib import Path

import pytest
from conftest import make_run

from amva.datasets.ladder import write_ladder
from amva.io import read_dataset
from amva.report.thin import BUCKETS

N = 3000


@pytest.fixture(scope="module")
def large_run(tmp_path_factory, demo_sources) -> Path:
    work = tmp_path_factory.mktemp("scale")
    write_ladder(N, work / "crops", next(iter(demo_sources.values())).parent)
    config = {
        "device": "cpu",
        "datasets": {"ladder": {"format": "folder", "root": str(work / "crops"), "aligned": True}},
        "models": {"sface": {"kind": "sface"}},
        "fiqa": {"sharpness": {"method": "sharpness"}},
        "cams": {"gradcam": {"method": "gradcam", "images": "binned"}},
        "bins": {"mode": "high_low", "k": 0.2},
        "statistics": {"n_boot": 200, "n_perm": 200},
        # the null model maps every binned image (1,200); the cascade and the curves take samples
        "trust": {"cascade_images": 40, "faithfulness_images": 40},
    }
    return make_run(work, config, "large.yaml") / "results"


def test_three_thousand_faces_reach_the_report(large_run):
    faces = read_dataset(large_run / "ladder/faces.nc", lazy=True)
    assert faces.sizes["image"] == N
    faces.close()
    bins = read_dataset(large_run / "ladder/bins/sharpness.nc")
    assert (bins["bin"] == "high").sum() == (bins["bin"] == "low").sum() == N // 5
    assert (large_run / "report.html").stat().st_size < 30_000_000


def test_bytes_per_image_per_analysis(large_run):
    cam = large_run / "ladder/sface/cam/gradcam.nc"
    maps = read_dataset(cam, lazy=True)
    n_maps = maps.sizes["image"]
    maps.close()
    assert n_maps == 2 * N // 5  # the binned images
    # uint16 with zlib gives real Grad-CAM maps about 15 kB (from 50 kB as float32); the map is a
    # bilinear upsampling of 49 values, which no general-purpose compressor exploits
    assert cam.stat().st_size / n_maps < 15_500
    assert (large_run / "ladder/sface/gradcam/variation/sharpness.nc").stat().st_size / N < 12_000
    trust = read_dataset(large_run / "ladder/sface/trust/gradcam.nc", lazy=True)
    assert trust.sizes["image"] == 2 * N // 5 and int(trust["deletion_faithfulness_median_count"]) == 40
    assert (large_run / "ladder/sface/trust/gradcam.nc").stat().st_size / N < 12_000  # null maps packed
    pairs = read_dataset(large_run / "ladder/pairs.nc")
    assert (large_run / "ladder/pairs.nc").stat().st_size < 60 * pairs.sizes["pair"]  # 60 MB for 10^6 pairs


def test_the_edc_chart_draws_a_bounded_number_of_points(large_run):
    edc = read_dataset(large_run / "ladder/sface/edc/sharpness.nc")
    assert edc.sizes["discard"] > 4 * BUCKETS  # one point per distinct pair quality: thinned for drawing
    log = (large_run.parent / "logs/edc_chart/ladder/sface.log").read_text()
    points, drawn = map(int, re.search(r"sharpness: EDC of (\d+) points, (\d+) drawn", log).groups())
    assert points == edc.sizes["discard"] and drawn <= 4 * BUCKETS + 2 + edc.sizes["limit"]
    assert (large_run / "report/ladder/sface/edc.svg").stat().st_size < 200_000
