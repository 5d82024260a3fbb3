"""Altair charts rendered to self-contained SVG (no JavaScript, no CDN)."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import vl_convert as vlc
import xarray as xr

from amva.io import write_bytes

# Every chart's data is bounded by design (curves thinned for drawing, amva.report.thin; grids of
# fixed size), so altair's row limit, a guard against embedding raw data, would only refuse a
# study with many FIQA methods.
alt.data_transformers.disable_max_rows()


def region_chart(ds: xr.Dataset, title: str) -> alt.FacetChart:
    """Mean activation and mean AM-V inside vs outside the face mask, per bin, with 95% intervals."""
    stats = ["mam", "amv"]
    df = ds["region_mean"].sel(stat=stats).to_dataframe().reset_index()
    ci = ds["region_mean_ci"].sel(stat=stats).to_dataframe().reset_index()
    ci = ci.pivot_table(index=["bin", "stat", "region"], columns="bound", values="region_mean_ci").reset_index()
    df = df.merge(ci, on=["bin", "stat", "region"])
    df["statistic"] = df["stat"].map({"mam": "mean activation (MAM)", "amv": "activation variation (AM-V)"})
    order = ds["bin"].values.tolist()
    base = alt.Chart(df).encode(
        x=alt.X("region:N", title=None, sort=["inside", "outside"]),
        xOffset=alt.XOffset("bin:N", sort=order),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("region_mean:Q", title="mean over region"),
        color=alt.Color("bin:N", sort=order, title="quality bin"),
        tooltip=["bin", "region", "statistic", alt.Tooltip("region_mean:Q", format=".4f"),
                 alt.Tooltip("lower:Q", format=".4f"), alt.Tooltip("upper:Q", format=".4f")],
    )  # fmt: skip
    whiskers = base.mark_rule(color="black").encode(y="lower:Q", y2="upper:Q")
    return (
        alt.layer(bars, whiskers, data=df)
        .properties(width=180, height=220)
        .facet(column=alt.Column("statistic:N", title=None), title=title)
    )


def edc_chart(curves: pd.DataFrame, title: str) -> alt.Chart:
    """Stepwise FNMR-versus-discard curves, one line per FIQA method."""
    return (
        alt.Chart(curves, title=title)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("discard:Q", title="fraction of genuine pairs discarded"),
            y=alt.Y("edc_error:Q", title="FNMR at the fixed threshold"),
            color=alt.Color("fiqa:N", title="FIQA"),
            tooltip=["fiqa", alt.Tooltip("discard:Q", format=".3f"), alt.Tooltip("edc_error:Q", format=".4f")],
        )
        .properties(width=420, height=260)
    )


def erc_chart(curves: pd.DataFrame, title: str) -> alt.FacetChart:
    """CR-FIQA's ERC: FNMR at the threshold re-computed per discard step, one panel per target FMR.

    ``curves`` has columns fiqa, fmr, erc_discard, erc_fnmr, erc_resolvable; NaN (no genuine or
    no impostor pair kept) leaves a gap; steps whose kept impostors cannot resolve the FMR show
    the reference's value as a cross.
    """
    resolved = ["yes", "no (reference's value)"]
    curves = curves.assign(resolved=curves["erc_resolvable"].map({1: resolved[0], 0: resolved[1]}))
    return (
        alt.Chart(curves)  # NaN rows keep their FMR's panel; the line skips them
        .mark_line(point=alt.OverlayMarkDef(size=16))
        .encode(
            x=alt.X(
                "erc_discard:Q",
                title="fraction of all pairs discarded",
                scale=alt.Scale(domain=[0, float(curves["erc_discard"].max())]),
            ),
            y=alt.Y("erc_fnmr:Q", title="FNMR"),
            color=alt.Color("fiqa:N", title="FIQA"),
            shape=alt.Shape(
                "resolved:N",
                title="FMR resolved",
                scale=alt.Scale(domain=resolved, range=["circle", "cross"]),
            ),
            tooltip=[
                "fiqa",
                "resolved",
                alt.Tooltip("erc_discard:Q", format=".2f"),
                alt.Tooltip("erc_fnmr:Q", format=".4f"),
            ],
        )
        .properties(width=260, height=220)
        .facet(column=alt.Column("fmr:O", title="target FMR", sort="descending"), title=title)
    )


def svg_text(chart: alt.TopLevelMixin) -> str:
    """The chart as SVG markup, rendered with vl-convert (offline): to write, or to inline in a page."""
    return vlc.vegalite_to_svg(chart.to_dict())


def write_svg(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Render with vl-convert (offline) and move into place atomically."""
    return write_bytes(path, svg_text(chart).encode())


def write_chart_png(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """A PNG of the chart at 1.5x (for pages that show images, such as the README)."""
    return write_bytes(path, vlc.vegalite_to_png(chart.to_dict(), scale=1.5))


def density_chart(ds: xr.Dataset, title: str) -> alt.Chart:
    """Distribution (KDE) of the AM-V pixel values per bin: the paper's distribution shift."""
    df = ds["amv_density"].to_dataframe().reset_index()
    order = ds["bin"].values.tolist()
    return (
        alt.Chart(df, title=title)
        .mark_line()
        .encode(
            x=alt.X("amv_value:Q", title="AM-V pixel value"),
            y=alt.Y("amv_density:Q", title="density"),
            color=alt.Color("bin:N", sort=order, title="quality bin"),
        )
        .properties(width=360, height=220)
    )


def profile_chart(ds: xr.Dataset, title: str) -> alt.Chart:
    """Column and row sums of the AM-V map per bin (where across the face the variation sits)."""
    frames = []
    for axis, name in (("x", "profile_x"), ("y", "profile_y")):
        df = ds[name].to_dataframe().reset_index().rename(columns={axis: "position", name: "sum"})
        frames.append(df.assign(axis=f"along {axis} (sum over {'y' if axis == 'x' else 'x'})"))
    order = ds["bin"].values.tolist()
    return (
        alt.Chart(pd.concat(frames), title=title)
        .mark_line()
        .encode(
            x=alt.X("position:Q", title="pixel"),
            y=alt.Y("sum:Q", title="summed AM-V"),
            color=alt.Color("bin:N", sort=order, title="quality bin"),
            column=alt.Column("axis:N", title=None),
        )
        .properties(width=240, height=200)
    )
