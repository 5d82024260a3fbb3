"""How FIQA methods relate to the demo's known degradations and to each other."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (average ranks for ties); NaN when either side is constant."""
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def severity_validation(faces: xr.Dataset, qualities: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Spearman of quality (higher = better) against degradation severity.

    Per FIQA: over all images, and per degradation kind over that kind's images plus the
    originals. A method that tracks the ladder has a clearly negative correlation.
    """
    severity = faces["severity"].values
    kind = faces["degradation"].values
    groups = {"all": np.ones(severity.size, bool)}
    groups.update({k: (kind == k) | (severity == 0) for k in sorted(set(kind) - {"none"})})
    rows = []
    for name, ds in qualities.items():
        q = ds["quality"].sel(image=faces["image"]).values
        for group, sel in groups.items():
            ok = sel & np.isfinite(q)
            rows.append(
                {"fiqa": name, "degradation": group, "images": int(ok.sum()), "spearman": spearman(q[ok], severity[ok])}
            )
    return pd.DataFrame(rows)


def agreement(qualities: Mapping[str, xr.Dataset], bins: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Pairwise rank correlation of FIQA instances and the overlap (Jaccard) of their bins."""
    rows = []
    names = list(qualities)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            qa = qualities[a]["quality"]
            qb = qualities[b]["quality"].sel(image=qa["image"])
            ok = np.isfinite(qa.values) & np.isfinite(qb.values)
            row = {"fiqa_a": a, "fiqa_b": b, "spearman": spearman(qa.values[ok], qb.values[ok])}
            la, lb = bins[a]["bin"], bins[b]["bin"].sel(image=bins[a]["image"])
            for name in bins[a]["bin_name"].values.tolist():
                sa, sb = set(la["image"].values[la.values == name]), set(lb["image"].values[lb.values == name])
                row[f"{name}_overlap"] = len(sa & sb) / len(sa | sb) if sa | sb else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)
