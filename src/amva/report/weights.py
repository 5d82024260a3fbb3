"""What a CAM's channel weights add: how far its maps move from the unweighted channel mean.

Every CAM result holds, per image, the Pearson r of its map with the ``activation_mean`` map of
the same layer (``baseline_r``). A method whose maps sit at r >= ``SAME_AS_BASELINE`` spends its
weighting (Score-CAM: about a thousand forward passes an image) on a map that one forward pass
gives; the front page says so in numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["SAME_AS_BASELINE", "weights_sentences", "weights_table"]

SAME_AS_BASELINE = 0.99
"""Median r with the channel-mean map at or above which a CAM's weights are said not to change the map."""


def weights_table(cams: Mapping[tuple[str, str, str], xr.Dataset]) -> pd.DataFrame:
    """One row per (dataset, model, CAM): maps, median and quartiles of ``baseline_r``, and for
    methods that score channels the median spread of the scores."""
    rows = []
    for (dataset, model, cam), ds in cams.items():
        r = ds["baseline_r"].values.astype(np.float64)
        finite = r[np.isfinite(r)]
        row = {
            "dataset": dataset,
            "model": model,
            "cam": cam,
            "cam_method": ds.attrs.get("cam_method", cam),
            "maps": int(r.size),
            "constant_maps": int(r.size - finite.size),
            "baseline_r_median": float(np.median(finite)) if finite.size else np.nan,
            "baseline_r_q25": float(np.quantile(finite, 0.25)) if finite.size else np.nan,
            "baseline_r_q75": float(np.quantile(finite, 0.75)) if finite.size else np.nan,
        }
        for name in ("score_range", "score_cv"):
            row[f"{name}_median"] = float(ds[name].median()) if name in ds else np.nan
        row["weights_do_not_change_the_map"] = int(row["baseline_r_median"] >= SAME_AS_BASELINE)
        rows.append(row)
    return pd.DataFrame(rows)


def weights_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per (dataset, model, CAM), from the numbers."""
    out = []
    for row in table.itertuples():
        if row.cam_method == "activation_mean":
            continue  # the baseline itself
        where = f"{row.dataset} / {row.model} / {row.cam}"
        if not np.isfinite(row.baseline_r_median):
            out.append(f"{where}: every one of its {row.maps} maps is constant, so no correlation is defined")
            continue
        text = (
            f"{where}: its maps correlate with the unweighted channel mean's at median r = "
            f"{row.baseline_r_median:.3f} (quartiles {row.baseline_r_q25:.3f}–{row.baseline_r_q75:.3f}, "
            f"{row.maps - row.constant_maps} maps)"
        )
        if np.isfinite(row.score_range_median):
            text += (
                f"; its channel scores span a median {row.score_range_median:.3f} "
                f"(coefficient of variation {row.score_cv_median:.3f})"
            )
        if row.weights_do_not_change_the_map:
            text += f": r ≥ {SAME_AS_BASELINE}, its weights do not change the map"
        out.append(text)
    return out
