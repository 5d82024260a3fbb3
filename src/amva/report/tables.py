"""Tables for the report: the numbers the figures show, one row per measurement."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import xarray as xr


def region_table(results: Mapping[tuple[str, str, str, str], xr.Dataset]) -> pd.DataFrame:
    """Mean MAM and AM-V inside/outside the face, their 95% intervals and ratio, per analysis and bin.

    ``results`` maps (dataset, model, cam, fiqa) to an AMVA result dataset. Every row carries the
    bin's number of groups (behind its interval); the AM-V rows also carry the permutation test of
    LOW − HIGH outside AM-V (one p-value per analysis), grouped and image-level.
    """
    rows = []
    for (dataset, model, cam, fiqa), ds in results.items():
        for b in ds["bin"].values.tolist():
            for stat in ("mam", "amv"):
                inside, outside = (
                    ds["region_mean"].sel(bin=b, stat=stat, region=r).item() for r in ("inside", "outside")
                )
                ci = ds["region_mean_ci"].sel(bin=b, stat=stat)
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "cam": cam,
                        "fiqa": fiqa,
                        "bin": b,
                        "bin_size": int(ds["bin_size"].sel(bin=b)),
                        "bin_groups": int(ds["bin_groups"].sel(bin=b)),
                        "group_by": ds.attrs["group_by"],
                        "statistic": stat,
                        "inside": round(inside, 5),
                        "outside": round(outside, 5),
                        "outside_inside_ratio": round(outside / inside, 4) if inside else float("nan"),
                        **{
                            f"{region}_ci_{bound}": round(ci.sel(region=region, bound=bound).item(), 5)
                            for region in ("inside", "outside")
                            for bound in ("lower", "upper")
                        },
                        **{
                            name: ds[name].item() if stat == "amv" else float("nan")
                            for name in ("perm_p_value", "perm_p_value_image_level")
                        },
                    }
                )
    return pd.DataFrame(rows)
