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
from amva.report.weights import weights_sentences
from amva.variation import PER_IMAGE

AnalysisKey = tuple[str, str, str, str]  # dataset, model, cam, fiqa
EvaluationKey = tuple[str, str, str]  # dataset, model, fiqa


MAKEUP_WARNING = 0.2  # TVD of HIGH/LOW group shares above which the front page warns in words


def _with_interval(value: xr.DataArray, ci: xr.DataArray) -> tuple[float, float, float]:
    """A scalar estimate with its bootstrap interval's bounds."""
    return value.item(), ci.sel(bound="lower").item(), ci.sel(bound="upper").item()


def _makeup(ds: xr.Dataset, high: str, low: str) -> dict[str, Any]:
    """Who is in the contrast's two bins: groups, largest group and its share, and their TVD."""
    row: dict[str, Any] = {"group_by": ds.attrs["group_by"], "makeup_tvd": ds["makeup_tvd"].item()}
    for name, b in (("high", high), ("low", low)):
        row[f"{name}_groups"] = int(ds["bin_groups"].sel(bin=b))
        row[f"{name}_ties"] = int(ds["bin_ties"].sel(bin=b)) if "bin_ties" in ds.coords else 0
        row[f"{name}_size"] = int(ds["bin_size"].sel(bin=b))
        row[f"{name}_largest_group"] = str(ds["largest_group"].sel(bin=b).item())
        row[f"{name}_largest_share"] = float(ds["largest_group_share"].sel(bin=b))
    return row


def _analysis_row(ds: xr.Dataset) -> dict[str, Any]:
    """Make-up, grouped intervals and p-values, and the image-level p-value of one AMVA result."""
    high, low = ds["bin"].values[0], ds["bin"].values[-1]
    row: dict[str, Any] = {
        "bins": f"{high} {int(ds['bin_size'].sel(bin=high))} / {low} {int(ds['bin_size'].sel(bin=low))}",
        **_makeup(ds, high, low),
        "inference": ds.attrs["inference"],
        "enough_groups": int(ds.attrs["enough_groups"]),
        "min_groups": int(ds.attrs["min_groups"]),
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
    lower, upper = ds["contrast_ci"].values
    row.update(contrast=ds["perm_statistic"].item(), contrast_lower=lower, contrast_upper=upper)
    row["outside_amv_p_value"] = ds["perm_p_value"].item()
    row["ratio_p_value"] = ds["perm_ratio_p_value"].item()
    row["perm_groups"] = int(ds["perm_groups"].item())
    row["outside_amv_p_value_image_level"] = ds["perm_p_value_image_level"].item()
    for value in PER_IMAGE:  # what the CAM's weights add (amva.report.weights), how faithful its maps are
        if f"{value}_median" not in ds:
            continue
        for name, b in (("high", high), ("low", low)):
            estimate, lower, upper = _with_interval(
                ds[f"{value}_median"].sel(bin=b), ds[f"{value}_median_ci"].sel(bin=b)
            )
            row.update({f"{value}_{name}": estimate, f"{value}_{name}_lower": lower})
            row[f"{value}_{name}_upper"] = upper
            row[f"{value}_{name}_images"] = int(ds[f"{value}_maps"].sel(bin=b))
    if "null_perm_statistic" in ds:  # the null model: the same bins, maps of a randomly initialised model
        lower, upper = ds["null_contrast_ci"].values
        row.update(null_contrast=ds["null_perm_statistic"].item(), null_contrast_lower=lower, null_contrast_upper=upper)
        row["null_p_value"] = ds["null_perm_p_value"].item()
        lower, upper = ds["contrast_minus_null_ci"].values
        row.update(minus_null=ds["contrast_minus_null"].item(), minus_null_lower=lower, minus_null_upper=upper)
    return row


def _evaluation_row(ev: xr.Dataset) -> dict[str, Any]:
    row: dict[str, Any] = {"edc_status": ev.attrs["edc_status"], "erc_status": ev.attrs["erc_status"]}
    row.update({f"edc_pauc_{limit:g}": ev["pauc"].sel(limit=limit).item() for limit in ev["limit"].values})
    for fmr in ev["fmr"].values:
        row[f"erc_auc_fmr_{fmr:g}"] = ev["auc"].sel(fmr=fmr).item()
        row[f"erc_resolved_fmr_{fmr:g}"] = int(ev["auc_resolved"].sel(fmr=fmr))
    return row


def summary_table(
    results: Mapping[AnalysisKey, xr.Dataset], evaluations: Mapping[EvaluationKey, xr.Dataset]
) -> pd.DataFrame:
    """One row per analysis: the bins' make-up, AM-V outside/inside ratios and outside AM-V with
    grouped 95% intervals, the LOW − HIGH contrast with its interval, the grouped and the
    image-level permutation p-values, and the EDC pAUC and ERC AUC of the analysis' FIQA
    (or why they were not computed).

    ``high`` is the first (best) bin and ``low`` the last, as in the permutation test, so
    with quantile bins the columns compare the extreme bins.
    """
    rows = []
    for (dataset, model, cam, fiqa), ds in results.items():
        row = {"dataset": dataset, "model": model, "cam": cam, "fiqa": fiqa, **_analysis_row(ds)}
        rows.append({**row, **_evaluation_row(evaluations[(dataset, model, fiqa)])})
    table = pd.DataFrame(rows)
    if len(table):
        table["verdict"] = _verdicts(table)
    return table


def _verdicts(table: pd.DataFrame) -> list[str]:
    """Per analysis, in words: the grouped test's verdict after Holm's correction over the FIQA methods
    of its (dataset, model, CAM), or why there is none."""
    out = pd.Series("too few groups", index=table.index)
    for _, part in table.groupby(["dataset", "model", "cam"], sort=False):
        testable = part[part["enough_groups"] == 1]
        adjusted = holm(testable["outside_amv_p_value"].to_numpy())
        out[testable.index] = np.where(adjusted < 0.05, "LOW > HIGH (Holm p < 0.05)", "not significant after Holm")
    return out.tolist()


def rejected_counts(rejected: Mapping[str, pd.DataFrame], used: Mapping[str, int]) -> pd.DataFrame:
    """Per dataset, the images used and how many input images and pairs were left out (rows of
    rejected.csv; the reasons are free text, one per row, so the front page counts and the file
    explains). A dataset with no usable image is marked: it has no analysis."""
    rows = []
    for dataset, table in rejected.items():
        missing = {"id", "reason"} - set(table.columns)
        if missing:
            raise ValueError(
                f"rejected table of dataset {dataset!r} lacks columns {sorted(missing)}; re-run its faces step"
            )
        pairs = table["id"].astype(str).str.startswith("pair:")
        rows.append(
            {
                "dataset": dataset,
                "images_used": int(used[dataset]),
                "rejected_images": int((~pairs).sum()),
                "rejected_pairs": int(pairs.sum()),
                "status": "analysed" if used[dataset] else "skipped: no usable image (see its rejected.csv)",
            }
        )
    return pd.DataFrame(rows, columns=["dataset", "images_used", "rejected_images", "rejected_pairs", "status"])


def _distinct(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(values)) or "unknown"


def run_provenance(files: Sequence[xr.Dataset], config: Mapping[str, Any]) -> pd.DataFrame:
    """What made the results: amva version, commit(s), key package versions, config hash, dates.

    Versions and commits come from the result files' attributes (what *made* them); more
    than one value means the results were made by different code and should be re-run.
    With no result file (every dataset skipped) they are this process's own.
    """
    own = provenance()
    attrs = [ds.attrs for ds in files] or [own]
    versions = [json.loads(a["amva_versions"]) for a in attrs]
    rows = [("amva", _distinct([v["amva"] for v in versions]))]
    rows.append(("git commit", _distinct([a["amva_git_commit"] for a in attrs])))
    rows += [(package, _distinct([v[package] for v in versions])) for package in ("torch", "snakemake", "numpy")]
    rows.append(("config sha256", hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()))
    created = sorted(ds.attrs["amva_created"] for ds in files)
    rows.append(("results created (UTC)", f"{created[0]} … {created[-1]}" if created else "no result files"))
    rows.append(("summary created (UTC)", str(own["amva_created"])))
    return pd.DataFrame(rows, columns=["item", "value"])


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def _interval(value: float, lower: float, upper: float) -> str:
    return f"{_fmt(value, 4)} [{_fmt(lower, 4)}, {_fmt(upper, 4)}]"


def _p(value: float) -> str:
    text = "n/a" if not np.isfinite(value) else f"{value:.3g}"
    return f"<b>{text}</b>" if np.isfinite(value) and value < 0.05 else text


def _grouped_p(row: Mapping[str, Any], column: str) -> str:
    """The grouped p-value, or "too few groups" where a contrast bin has fewer than the minimum."""
    if not row["enough_groups"]:
        return f"too few groups ({row['high_groups']} / {row['low_groups']} &lt; {row['min_groups']})"
    return f"{_p(row[column])} ({row['perm_groups']} groups)"


def _largest(row: Mapping[str, Any], name: str) -> str:
    return f"{html.escape(row[f'{name}_largest_group'])} {100 * row[f'{name}_largest_share']:.0f}%"


def front_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary formatted for reading: group counts beside every interval and p-value,
    intervals as ``value [lower, upper]``, p < 0.05 in bold, too few groups in words."""
    out = summary[["dataset", "model", "cam", "fiqa", "bins", "group_by"]].copy()
    rows = summary.to_dict("records")
    out["groups HIGH / LOW"] = [f"{r['high_groups']} / {r['low_groups']}" for r in rows]
    out["largest group HIGH / LOW"] = [f"{_largest(r, 'high')} / {_largest(r, 'low')}" for r in rows]
    out["make-up TVD"] = summary["makeup_tvd"].map(lambda v: _fmt(v, 2))
    for column, title in (("ratio", "AM-V out/in"), ("outside_amv", "outside AM-V")):
        for name in ("high", "low"):
            parts = [f"{column}_{name}", f"{column}_{name}_lower", f"{column}_{name}_upper"]
            out[f"{title} {name.upper()} [95% CI]"] = [_interval(*row) for row in summary[parts].values]
    out["LOW − HIGH outside AM-V [95% CI]"] = [
        _interval(*row) for row in summary[["contrast", "contrast_lower", "contrast_upper"]].values
    ]
    out["p (outside LOW > HIGH), grouped"] = [_grouped_p(r, "outside_amv_p_value") for r in rows]
    out["p (ratio LOW > HIGH), grouped"] = [_grouped_p(r, "ratio_p_value") for r in rows]
    out["p (outside), image-level"] = summary["outside_amv_p_value_image_level"].map(_p)
    if "null_contrast" in summary:
        out["null model: LOW − HIGH [95% CI]"] = [
            _interval(*row) for row in summary[["null_contrast", "null_contrast_lower", "null_contrast_upper"]].values
        ]
        out["null model p, grouped"] = summary["null_p_value"].map(_p)
        out["trained − null [95% CI]"] = [
            _interval(*row) for row in summary[["minus_null", "minus_null_lower", "minus_null_upper"]].values
        ]
    for kind in ("deletion", "insertion"):
        name = f"{kind}_faithfulness"
        if f"{name}_high" in summary:
            out[f"{kind} faithfulness HIGH / LOW (images)"] = [
                f"{_fmt(r[f'{name}_high'], 3)} ({r[f'{name}_high_images']}) / "
                f"{_fmt(r[f'{name}_low'], 3)} ({r[f'{name}_low_images']})"
                for r in rows
            ]
    for column in summary.columns:
        if column.startswith("edc_pauc_"):
            out[f"EDC pAUC ≤ {column.removeprefix('edc_pauc_')}"] = summary[column].map(lambda v: _fmt(v, 4))
        elif column.startswith("erc_auc_fmr_"):
            fmr = column.removeprefix("erc_auc_fmr_")
            values = zip(summary[column], summary[f"erc_resolved_fmr_{fmr}"], strict=True)
            out[f"ERC AUC @ FMR {fmr}"] = [_fmt(v, 4) + ("" if ok or not np.isfinite(v) else " †") for v, ok in values]
    return out


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: family-wise error control over several tests."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def findings(summary: pd.DataFrame) -> list[str]:
    """The front page's sentences, each made from the table's numbers: per (dataset, model, CAM),
    how many FIQA methods show LOW varying more outside the face than HIGH, how many of those with
    enough groups the grouped test puts at p < 0.05 (and after Holm's correction over them), how
    many are withheld for too few groups, and what ignoring the groups would have claimed."""
    sentences = []
    for (dataset, model, cam), part in summary.groupby(["dataset", "model", "cam"], sort=False):
        n = len(part)
        testable = part[part["enough_groups"] == 1]
        significant = testable[testable["outside_amv_p_value"] < 0.05]
        after_holm = int((holm(testable["outside_amv_p_value"].to_numpy()) < 0.05).sum())
        image_level = part[part["outside_amv_p_value_image_level"] < 0.05]
        group_by = ", ".join(dict.fromkeys(part["group_by"]))
        if part["inference"].str.startswith("every group is one image").all():
            group_by += ", one image each: image-level"
        text = (
            f"<b>{html.escape(str(dataset))} / {html.escape(str(model))} / {html.escape(str(cam))}</b> "
            f"(groups: {html.escape(group_by)}): LOW's outside AM-V exceeds HIGH's for "
            f"{int((part['contrast'] > 0).sum())} of {n} FIQA methods; the grouped test puts that at "
            f"p &lt; 0.05 for {len(significant)} of the {len(testable)} with at least "
            f"{int(part['min_groups'].iloc[0])} groups per bin"
        )
        if len(significant):
            text += f" ({html.escape(', '.join(significant['fiqa']))}), {after_holm} after Holm's correction"
        withheld = n - len(testable)
        text += f"; {withheld} withheld for too few groups" if withheld else ""
        text += f". Ignoring the groups, {len(image_level)} of {n} would reach p &lt; 0.05."
        text += _null_sentence(part)
        sentences.append(text)
    return sentences


def _null_sentence(part: pd.DataFrame) -> str:
    """How the trained model's contrasts compare with the null model's, in numbers (empty without one)."""
    if "null_contrast" not in part or not np.isfinite(part["null_contrast"]).any():
        return " No null model was computed for this CAM."
    has = part[np.isfinite(part["null_contrast"])]
    above = has[has["minus_null_lower"] > 0]
    null_significant = has[(has["null_p_value"] < 0.05) & (has["enough_groups"] == 1)]
    model = html.escape(str(part["model"].iloc[0]))
    text = (
        f" Against the null model (the same bins, maps of a randomly initialised {model}): "
        f"the trained contrast exceeds the null one for {int((has['minus_null'] > 0).sum())} of {len(has)}, with the "
        f"paired 95% interval of the difference above 0 for {len(above)}"
    )
    if len(above):
        parts = [f"{html.escape(r['fiqa'])} {r['minus_null']:.4f} [{r['minus_null_lower']:.4f}, "
                 f"{r['minus_null_upper']:.4f}]" for r in above.to_dict("records")]  # fmt: skip
        text += f" ({'; '.join(parts)})"
    text += f"; the null model alone reaches p &lt; 0.05 for {len(null_significant)}"
    if len(null_significant):
        text += (
            f" ({html.escape(', '.join(null_significant['fiqa']))}): a contrast that a network with random weights "
            "gives too cannot be credited to what the model learned"
        )
    return text + "."


def makeup_warnings(summary: pd.DataFrame) -> list[str]:
    """A sentence for every analysis whose HIGH and LOW bins hold the groups in different proportions,
    and for every one whose bins' edges cut through tied scores."""
    out = []
    for row in summary[summary["makeup_tvd"] > MAKEUP_WARNING].to_dict("records"):
        out.append(
            f"{html.escape(row['dataset'])} · {html.escape(row['fiqa'])}: HIGH and LOW differ in make-up "
            f"(TVD {row['makeup_tvd']:.2f} over {html.escape(row['group_by'])}); HIGH's largest group is "
            f"{_largest(row, 'high')} of its images, LOW's {_largest(row, 'low')}. Part of any HIGH/LOW "
            "difference may come from who is in the bins; the grouped p-value accounts for it."
        )
    for row in summary[(summary["high_ties"] > 0) | (summary["low_ties"] > 0)].to_dict("records"):
        every = row["high_ties"] == row["high_size"] and row["low_ties"] == row["low_size"]
        out.append(
            f"{html.escape(row['dataset'])} · {html.escape(row['fiqa'])}: {row['high_ties']} of HIGH's "
            f"{row['high_size']} and {row['low_ties']} of LOW's {row['low_size']} images share their score with "
            "images outside their bin, so the image id, not quality, put them there"
            + (": every binned image is tied and the split is arbitrary (one score for all images?)" if every else "")
        )
    return list(dict.fromkeys(out))  # one per (dataset, FIQA): the bins are shared by models and CAMs


def evaluation_notes(summary: pd.DataFrame) -> list[str]:
    """EDC/ERC that were not computed, once per dataset and reason."""
    notes = []
    for column, name in (("edc_status", "EDC"), ("erc_status", "ERC")):
        for (dataset, status), _ in summary.groupby(["dataset", column], sort=False):
            if status != "computed":
                notes.append(f"{html.escape(dataset)}: {name} {html.escape(status)}")
    return notes


_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 13px; margin: 12px; color: #111; background: #fff; }
table { border-collapse: collapse; margin-bottom: 18px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #eef; white-space: normal; min-width: 4em; }
#summary td:nth-child(-n+9), #summary th:nth-child(-n+9), #rejected td:first-child, #provenance td { text-align: left; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
p, li { max-width: 70em; }
.warning { color: #8a3b00; }
"""


def _html_table(df: pd.DataFrame, caption: str, table_id: str, escape: bool = True) -> str:
    body = df.to_html(index=False, escape=escape, border=0, table_id=table_id, na_rep="n/a")
    return body.replace(">\n  <thead>", f">\n  <caption>{html.escape(caption)}</caption>\n  <thead>", 1)


def _items(sentences: Sequence[str], css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return "<ul>" + "".join(f"<li{attr}>{s}</li>" for s in sentences) + "</ul>" if sentences else ""


def summary_html(
    summary: pd.DataFrame,
    rejected: pd.DataFrame,
    prov: pd.DataFrame,
    weights: pd.DataFrame | None = None,
    trust: Sequence[str] = (),
    forest_svg: str = "",
) -> str:
    """A self-contained HTML page (inline CSS and SVG, no script, no external resource); ``weights`` is
    :func:`amva.report.weights.weights_table`'s, what each CAM's channel weights add; ``trust`` the
    sanity and faithfulness lines (:func:`amva.report.trust.trust_sentences`); ``forest_svg`` the
    forest plot that opens the page."""
    front = front_table(summary)
    for column in front.columns[:6]:
        front[column] = front[column].map(lambda text: html.escape(str(text)))
    skipped = rejected[rejected["images_used"] == 0]["dataset"]
    notes = evaluation_notes(summary) + [
        f"{html.escape(d)}: every input was rejected, so it has no analysis (see its rejected.csv)" for d in skipped
    ]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>amva summary</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h2>Does LOW vary more outside the face than HIGH?</h2>",
        f'<div class="forest">{forest_svg}</div>' if forest_svg else "",
        _items(findings(summary)),
        *(["<h2>Can these maps be trusted?</h2>", _items(map(html.escape, trust))] if trust else []),
        _items(makeup_warnings(summary), "warning"),
        _html_table(front, "Per analysis (dataset, model, CAM, FIQA)", "summary", escape=False),
        "<p>Groups: the grouping label of the dataset (the demo: the photo a variant was made from; "
        "real data: the identity, or each face its own group). Make-up TVD: total-variation distance "
        "between the group shares of HIGH and LOW (0: the same groups in the same proportions). AM-V "
        "out/in: mean AM-V outside the face mask divided by the mean inside. Intervals: 95% cluster "
        "bootstrap over the groups. p (grouped): one-sided permutation test that LOW exceeds HIGH, with "
        "labels shuffled within groups (and whole groups swapped), with the number of groups whose labels "
        "move; bold: p &lt; 0.05; too few groups: a bin has fewer than the minimum, so no p-value and no "
        "interval is given. p (image-level): the same test treating every image as independent, for "
        "comparison only. EDC pAUC: area under the FNMR-versus-discard curve up to the discard fraction "
        "(lower = better ranking); ERC AUC: CR-FIQA's protocol at that FMR, † where the kept impostors no "
        "longer resolve the FMR (the reference's number, flagged); n/a: not computed (see below).</p>",
        _items(notes) if notes else "",
        *(
            ["<h2>What the CAMs' channel weights add</h2>", _items(map(html.escape, weights_sentences(weights)))]
            if weights is not None and len(weights)
            else []
        ),
        _html_table(rejected, "Images used and inputs left out (results/{dataset}/rejected.csv)", "rejected"),
        _html_table(prov, "Provenance", "provenance"),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
