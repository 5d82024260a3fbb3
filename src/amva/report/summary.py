"""The report's front page: the headline numbers of every analysis, input losses and provenance.

One row per (dataset, model, CAM, FIQA) so a reader sees at a glance whether the paper's
finding holds (LOW varies more outside the face than HIGH) and what each FIQA ranking
does for recognition, before opening any figure. All values are read from the result
files; nothing is recomputed here.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from amva.io import provenance

AnalysisKey = tuple[str, str, str, str]  # dataset, model, cam, fiqa
EvaluationKey = tuple[str, str, str]  # dataset, model, fiqa


def _with_interval(value: xr.DataArray, ci: xr.DataArray) -> tuple[float, float, float]:
    """A scalar estimate with its bootstrap interval's bounds."""
    return value.item(), ci.sel(bound="lower").item(), ci.sel(bound="upper").item()


def summary_table(
    results: Mapping[AnalysisKey, xr.Dataset], evaluations: Mapping[EvaluationKey, xr.Dataset]
) -> pd.DataFrame:
    """One row per analysis: AM-V outside/inside ratios, outside AM-V with 95% intervals,
    both permutation p-values, and the EDC pAUC and ERC AUC of the analysis' FIQA.

    ``high`` is the first (best) bin and ``low`` the last, as in the permutation test, so
    with quantile bins the columns compare the extreme bins.
    """
    rows = []
    for (dataset, model, cam, fiqa), ds in results.items():
        high, low = ds["bin"].values[0], ds["bin"].values[-1]
        row: dict[str, Any] = {
            "dataset": dataset,
            "model": model,
            "cam": cam,
            "fiqa": fiqa,
            "bins": f"{high} {int(ds['bin_size'].sel(bin=high))} / {low} {int(ds['bin_size'].sel(bin=low))}",
            "ratio_p_value": ds["perm_ratio_p_value"].item(),
        }
        for name, b in (("high", high), ("low", low)):
            amv = {"bin": b, "stat": "amv"}
            for column, value, ci in (
                ("ratio", ds["outside_inside_ratio"], ds["outside_inside_ratio_ci"]),
                ("outside_amv", ds["region_mean"].sel(region="outside"), ds["region_mean_ci"].sel(region="outside")),
            ):
                estimate, lower, upper = _with_interval(value.sel(amv), ci.sel(amv))
                row.update({f"{column}_{name}": estimate, f"{column}_{name}_lower": lower})
                row[f"{column}_{name}_upper"] = upper
        row["outside_amv_p_value"] = ds["perm_p_value"].item()
        ev = evaluations[(dataset, model, fiqa)]
        row.update({f"edc_pauc_{limit:g}": ev["pauc"].sel(limit=limit).item() for limit in ev["limit"].values})
        row.update({f"erc_auc_fmr_{fmr:g}": ev["auc"].sel(fmr=fmr).item() for fmr in ev["fmr"].values})
        rows.append(row)
    return pd.DataFrame(rows)


def rejected_counts(rejected: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per dataset, how many input images and pairs were left out (rows of rejected.csv; the
    reasons are free text, one per row, so the front page counts and the file explains)."""
    rows = []
    for dataset, table in rejected.items():
        missing = {"id", "reason"} - set(table.columns)
        if missing:
            raise ValueError(
                f"rejected table of dataset {dataset!r} lacks columns {sorted(missing)}; re-run its faces step"
            )
        pairs = table["id"].astype(str).str.startswith("pair:")
        rows.append({"dataset": dataset, "rejected_images": int((~pairs).sum()), "rejected_pairs": int(pairs.sum())})
    return pd.DataFrame(rows, columns=["dataset", "rejected_images", "rejected_pairs"])


def _distinct(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(values)) or "unknown"


def run_provenance(files: Sequence[xr.Dataset], config: Mapping[str, Any]) -> pd.DataFrame:
    """What made the results: amva version, commit(s), key package versions, config hash, dates.

    Versions and commits come from the result files' attributes (what *made* them); more
    than one value means the results were made by different code and should be re-run.
    """
    if not files:
        raise ValueError("no result files to take the provenance from")
    versions = [json.loads(ds.attrs["amva_versions"]) for ds in files]
    created = sorted(ds.attrs["amva_created"] for ds in files)
    rows = [("amva", _distinct([v["amva"] for v in versions]))]
    rows.append(("git commit", _distinct([ds.attrs["amva_git_commit"] for ds in files])))
    rows += [(package, _distinct([v[package] for v in versions])) for package in ("torch", "snakemake", "numpy")]
    rows.append(("config sha256", hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()))
    rows.append(("results created (UTC)", f"{created[0]} … {created[-1]}"))
    rows.append(("summary created (UTC)", str(provenance()["amva_created"])))
    return pd.DataFrame(rows, columns=["item", "value"])


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def _interval(value: float, lower: float, upper: float) -> str:
    return f"{_fmt(value, 4)} [{_fmt(lower, 4)}, {_fmt(upper, 4)}]"


def _p(value: float) -> str:
    text = "n/a" if not np.isfinite(value) else f"{value:.3g}"
    return f"<b>{text}</b>" if np.isfinite(value) and value < 0.05 else text


def front_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary formatted for reading: intervals as ``value [lower, upper]``, p < 0.05 in bold."""
    out = summary[["dataset", "model", "cam", "fiqa", "bins"]].copy()
    for column, title in (("ratio", "AM-V out/in"), ("outside_amv", "outside AM-V")):
        for name in ("high", "low"):
            parts = [f"{column}_{name}", f"{column}_{name}_lower", f"{column}_{name}_upper"]
            out[f"{title} {name.upper()} [95% CI]"] = [_interval(*row) for row in summary[parts].values]
        if column == "ratio":
            out["p (ratio LOW > HIGH)"] = summary["ratio_p_value"].map(_p)
    out["p (outside LOW > HIGH)"] = summary["outside_amv_p_value"].map(_p)
    for column in summary.columns:
        if column.startswith("edc_pauc_"):
            out[f"EDC pAUC ≤ {column.removeprefix('edc_pauc_')}"] = summary[column].map(lambda v: _fmt(v, 4))
        elif column.startswith("erc_auc_fmr_"):
            out[f"ERC AUC @ FMR {column.removeprefix('erc_auc_fmr_')}"] = summary[column].map(lambda v: _fmt(v, 4))
    return out


_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 13px; margin: 12px; color: #111; background: #fff; }
table { border-collapse: collapse; margin-bottom: 18px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #eef; white-space: normal; min-width: 4em; }
#summary td:nth-child(-n+5), #summary th:nth-child(-n+5), #rejected td:first-child, #provenance td { text-align: left; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
p { max-width: 70em; }
"""


def _html_table(df: pd.DataFrame, caption: str, table_id: str, escape: bool = True) -> str:
    body = df.to_html(index=False, escape=escape, border=0, table_id=table_id, na_rep="n/a")
    return body.replace(">\n  <thead>", f">\n  <caption>{html.escape(caption)}</caption>\n  <thead>", 1)


def summary_html(summary: pd.DataFrame, rejected: pd.DataFrame, prov: pd.DataFrame) -> str:
    """A self-contained HTML page (inline CSS, no script, no external resource)."""
    front = front_table(summary)
    for column in front.columns[:5]:
        front[column] = front[column].map(lambda text: html.escape(str(text)))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>amva summary</title>',
        f"<style>{_STYLE}</style></head><body>",
        _html_table(front, "Per analysis (dataset, model, CAM, FIQA)", "summary", escape=False),
        "<p>AM-V out/in: mean AM-V outside the face mask divided by the mean inside. Outside AM-V: "
        "mean over the pixels outside the mask with its 95% bootstrap interval. p: one-sided permutation "
        "test that LOW exceeds HIGH (bold: p &lt; 0.05). EDC pAUC: area under the FNMR-versus-discard "
        "curve up to the discard fraction (lower = better ranking); ERC AUC: CR-FIQA's protocol at that "
        "FMR; n/a: too few impostor pairs to resolve the FMR.</p>",
        _html_table(rejected, "Inputs left out (results/{dataset}/rejected.csv)", "rejected"),
        _html_table(prov, "Provenance", "provenance"),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
