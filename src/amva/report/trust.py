"""The report's "Can these maps be trusted?" page and front-page lines, from the trust files.

Per CAM: the maps of a few images at each cascade step, the rank correlation and SSIM with the
trained maps against the step, the deletion/insertion curves beside the random orders' band,
and one sentence with the numbers. The forest plot puts every finding's LOW − HIGH contrast
beside the null model's.
"""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import cv2
import numpy as np
import pandas as pd
import xarray as xr

from amva.cam.randomise import HEAD
from amva.report.maps import CELL, label_strip, map_cell
from amva.trust import ALL, SANITY_LIMIT, TRAINED

TrustKey = tuple[str, str, str]  # dataset, model, cam
SAME_MAP = 0.99  # median rho after randomising the head at or above which the head is said not to matter


def cascade_panel(ds: xr.Dataset, faces: xr.Dataset, colormap: str = "viridis") -> np.ndarray:
    """Rows = example images; columns = the face, the trained map, then each cascade step's map. BGR uint8."""
    mask = np.zeros(ds["example_maps"].shape[-2:], dtype=bool)
    rows = []
    for image in ds["example"].values:
        face = cv2.cvtColor(faces["pixels"].sel(image=image).values.astype(np.uint8), cv2.COLOR_RGB2BGR)
        face = cv2.resize(face, (CELL, CELL), interpolation=cv2.INTER_LINEAR)
        cells = [np.vstack([label_strip(CELL, str(image)[-22:], "input"), face])]
        for step in ds["map_step"].values:
            values = ds["example_maps"].sel(example=image, map_step=step).values
            if step == TRAINED:
                note = TRAINED
            else:
                rho = ds["spearman"].sel(step=step, image=image).item()
                note = f"rho {rho:.2f}" if np.isfinite(rho) else "constant map"
            cells.append(map_cell(np.nan_to_num(values), 1.0, mask, str(step)[-22:], colormap))
            cv2.putText(cells[-1], note, (6, CELL + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def _with_ci(ds: xr.Dataset, name: str) -> pd.DataFrame:
    lower, upper = ds[f"{name}_median_ci"].values.T
    return pd.DataFrame(
        {
            "step": ds["step"].values,
            "order": np.arange(ds.sizes["step"]),
            "median": ds[f"{name}_median"].values,
            "lower": lower,
            "upper": upper,
            "measure": "Spearman rho" if name == "spearman" else "SSIM",
        }
    )


def trust_chart(ds: xr.Dataset, title: str) -> alt.HConcatChart:
    """Left: median Spearman and SSIM with the trained maps per cascade step (95% grouped intervals).
    Right: median deletion and insertion curves of the maps beside the random orders' (band: their
    interquartile range over the images)."""
    steps = pd.concat([_with_ci(ds, "spearman"), _with_ci(ds, "ssim")])
    base = alt.Chart(steps).encode(
        x=alt.X("step:N", sort=ds["step"].values.tolist(), title="randomised from the top down to"),
        color=alt.Color("measure:N", title="similarity to the trained map"),
    )
    left = alt.layer(
        base.mark_line(point=True).encode(
            y=alt.Y("median:Q", title="median over images", scale=alt.Scale(domain=[-1, 1]))
        ),
        base.mark_errorbar().encode(y="lower:Q", y2="upper:Q"),
        alt.Chart(pd.DataFrame({"y": [SANITY_LIMIT]})).mark_rule(strokeDash=[4, 4], color="grey").encode(y="y:Q"),
    ).properties(width=260, height=220, title="sanity: cascading randomisation")
    if "deletion" not in ds:
        return alt.hconcat(left, title=title)
    frames = []
    for kind in ("deletion", "insertion"):
        curves = ds[kind].dropna("image", how="all").values
        random = ds[f"{kind}_random"].dropna("image", how="all").values
        frames.append(
            pd.DataFrame(
                {
                    "fraction": ds["fraction"].values,
                    "map": np.median(curves, axis=0),
                    "random": np.median(random, axis=0),
                    "random_q25": np.quantile(random, 0.25, axis=0),
                    "random_q75": np.quantile(random, 0.75, axis=0),
                    "curve": kind,
                }
            )
        )
    df = pd.concat(frames)
    curve = alt.Chart(df).encode(x=alt.X("fraction:Q", title="fraction of cells removed / revealed"))
    right = (
        alt.layer(
            curve.mark_area(opacity=0.25, color="grey").encode(y="random_q25:Q", y2="random_q75:Q"),
            curve.mark_line(color="grey", strokeDash=[4, 4]).encode(y="random:Q"),
            curve.mark_line(point=True).encode(y=alt.Y("map:Q", title="cosine with the clean embedding")),
        )
        .properties(width=220, height=220)
        .facet(column=alt.Column("curve:N", title="faithfulness (grey: random orders)"))
    )
    return alt.hconcat(left, right, title=title)


def trust_table(trusts: Mapping[TrustKey, xr.Dataset]) -> pd.DataFrame:
    """One row per (dataset, model, CAM, cascade step): the similarity medians with their intervals and
    counts; the CAM's faithfulness medians are repeated on each of its rows."""
    rows = []
    for (dataset, model, cam), ds in trusts.items():
        faith = {}
        for kind in ("deletion", "insertion"):
            name = f"{kind}_faithfulness_median"
            if name in ds:
                lower, upper = ds[f"{name}_ci"].values
                faith.update({f"{kind}_faithfulness": ds[name].item(), f"{kind}_lower": lower, f"{kind}_upper": upper})
                faith[f"{kind}_images"] = int(ds[f"{name}_count"])
                faith[f"{kind}_groups"] = int(ds[f"{name}_groups"])
        for step in ds["step"].values:
            row = {"dataset": dataset, "model": model, "cam": cam, "step": step}
            row["blocks"] = len(str(ds["step_blocks"].sel(step=step).item()).split(", "))
            for name in ("spearman", "ssim"):
                lower, upper = ds[f"{name}_median_ci"].sel(step=step).values
                row.update({name: ds[f"{name}_median"].sel(step=step).item(), f"{name}_lower": lower})
                row[f"{name}_upper"] = upper
            row["images"] = int(ds["spearman_median_count"].sel(step=step))
            row["groups"] = int(ds["spearman_median_groups"].sel(step=step))
            row["constant_maps"] = int((ds["map_state"].sel(step=step) == 1).sum())
            rows.append({**row, **faith})
    return pd.DataFrame(rows)


def _num(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "n/a"


def _ci(value: float, lower: float, upper: float) -> str:
    return f"{_num(value)} [{_num(lower)}, {_num(upper)}]"


def trust_sentences(table: pd.DataFrame) -> list[str]:
    """One line per (dataset, model, CAM), from the numbers: the sanity verdict and the faithfulness."""
    out = []
    for (dataset, model, cam), part in table.groupby(["dataset", "model", "cam"], sort=False):
        last = part.iloc[-1]
        first = part.iloc[0]
        text = (
            f"{dataset} / {model} / {cam}: with every weight randomised, its maps keep a median Spearman rho of "
            f"{_ci(last.spearman, last.spearman_lower, last.spearman_upper)} and SSIM {_num(last.ssim)} with the "
            f"trained model's ({last.images} images, {last.groups} groups)"
        )
        if len(part) > 1:
            text += f"; after the first step ({first.step}) rho is {_num(first.spearman)}"
            if first.step == HEAD and first.spearman >= SAME_MAP:
                text += " (its maps ignore the embedding head: they come from the layer's activations alone)"
        if last.step == ALL and np.isfinite(last.spearman):
            passed = last.spearman < SANITY_LIMIT
            text += (
                f": it passes the sanity check (rho < {SANITY_LIMIT})"
                if passed
                else f": it FAILS the sanity check (rho ≥ {SANITY_LIMIT}): its maps describe the image more "
                "than the model"
            )
        if last.constant_maps:
            text += f"; {last.constant_maps} randomised maps were constant (no rank order)"
        if "deletion_faithfulness" in part and np.isfinite(first.get("deletion_faithfulness", np.nan)):
            text += (
                f". Faithfulness (above 0 beats random orders): deletion "
                f"{_ci(first.deletion_faithfulness, first.deletion_lower, first.deletion_upper)}, insertion "
                f"{_ci(first.insertion_faithfulness, first.insertion_lower, first.insertion_upper)} "
                f"({int(first.deletion_images)} images, {int(first.deletion_groups)} groups)"
            )
        out.append(text + ".")
    return out


def forest_chart(summary: pd.DataFrame) -> alt.Chart:
    """Every finding's LOW − HIGH outside-AM-V contrast with its grouped 95% interval, the trained
    model beside the null model (where computed), one row per dataset, CAM and FIQA method; the
    Holm-corrected verdict marks the point's shape."""
    rows = []
    for r in summary.to_dict("records"):
        label = f"{r['dataset']} · {r['model']} · {r['cam']} · {r['fiqa']}"
        arms = [("trained model", "contrast", r.get("verdict", ""))]
        if np.isfinite(r.get("null_contrast", np.nan)):
            arms.append(("null model (random weights)", "null_contrast", "null model"))
        for arm, column, verdict in arms:
            rows.append(
                {
                    "finding": label,
                    "arm": arm,
                    "contrast": r[column],
                    "lower": r[f"{column}_lower"],
                    "upper": r[f"{column}_upper"],
                    "verdict": verdict,
                }
            )
    df = pd.DataFrame(rows)
    order = list(dict.fromkeys(df["finding"]))
    base = alt.Chart(df).encode(
        y=alt.Y("finding:N", sort=order, title=None, axis=alt.Axis(labelLimit=400)),
        yOffset=alt.YOffset("arm:N"),
        color=alt.Color("arm:N", title=None, legend=alt.Legend(orient="top")),
    )
    return alt.layer(
        alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="black").encode(x="x:Q"),
        base.mark_rule().encode(
            x=alt.X("lower:Q", title="LOW − HIGH outside AM-V (95% grouped interval)"), x2="upper:Q"
        ),
        base.mark_point(filled=True, size=50).encode(
            x="contrast:Q",
            shape=alt.Shape("verdict:N", title="Holm-corrected", legend=alt.Legend(orient="top")),
            tooltip=["finding", "arm", alt.Tooltip("contrast:Q", format=".4f"), "verdict"],
        ),
    ).properties(width=420, height=alt.Step(14), title="Does LOW vary more outside the face than HIGH?")
