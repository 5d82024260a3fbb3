# Report layout follows the config: one category per "dataset / model", one subcategory per
# FIQA instance (plus "» all FIQA" for the comparisons), labels for figure, CAM and bins.
# "» Summary" sorts before any dataset name in the report's menu (it sorts with localeCompare).
# Only the rules here read config["report"], so changing it re-runs report jobs only.
SUMMARY = "» Summary"
ALL_FIQA = "» all FIQA"
TRUST = "» can these maps be trusted?"
DATASET_MODEL = "{dataset} / {model}"


rule figures:
    input:
        variation="results/{dataset}/{model}/{cam}/variation/{fiqa}.nc",
        faces=model_faces,
    output:
        maps=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/maps.png",
            caption="../report/maps.rst",
            category=DATASET_MODEL,
            subcategory="{fiqa}",
            labels=figure_labels("1 MAM / AM-V / D-AM-V maps"),
        ),
        regions=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/regions.svg",
            caption="../report/regions.rst",
            category=DATASET_MODEL,
            subcategory="{fiqa}",
            labels=figure_labels("2 inside vs outside the face"),
        ),
        density=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/density.svg",
            caption="../report/density.rst",
            category=DATASET_MODEL,
            subcategory="{fiqa}",
            labels=figure_labels("3 AM-V distribution (KDE)"),
        ),
        profiles=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/profiles.svg",
            caption="../report/profiles.rst",
            category=DATASET_MODEL,
            subcategory="{fiqa}",
            labels=figure_labels("4 AM-V profiles"),
        ),
        deviations=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/deviations.png",
            caption="../report/deviations.rst",
            category=DATASET_MODEL,
            subcategory="{fiqa}",
            labels=figure_labels("5 most deviating LOW images"),
        ),
    log:
        "logs/figures/{dataset}/{model}/{cam}/{fiqa}.log",
    benchmark:
        "benchmarks/figures/{dataset}/{model}/{cam}/{fiqa}.tsv"
    conda:
        ENV
    params:
        gallery=config["report"]["gallery"],
        colormap=config["report"]["colormap"],
    script:
        f"{SCRIPTS}/figures.py"


rule trust_figures:
    input:
        trust="results/{dataset}/{model}/trust/{cam}.nc",
        faces=model_faces,
    output:
        maps=report(
            "results/report/{dataset}/{model}/{cam}/trust_maps.png",
            caption="../report/trust.rst",
            category=DATASET_MODEL,
            subcategory=TRUST,
            labels=lambda w: {"figure": "1 maps under cascading randomisation", "CAM": w.cam},
        ),
        chart=report(
            "results/report/{dataset}/{model}/{cam}/trust.svg",
            caption="../report/trust.rst",
            category=DATASET_MODEL,
            subcategory=TRUST,
            labels=lambda w: {"figure": "2 sanity and faithfulness", "CAM": w.cam},
        ),
    log:
        "logs/trust_figures/{dataset}/{model}/{cam}.log",
    benchmark:
        "benchmarks/trust_figures/{dataset}/{model}/{cam}.tsv"
    conda:
        ENV
    params:
        colormap=config["report"]["colormap"],
    script:
        f"{SCRIPTS}/trust_figures.py"


rule edc_chart:
    input:
        edc_inputs,
    output:
        edc=report(
            "results/report/{dataset}/{model}/edc.svg",
            caption="../report/edc.rst",
            category=DATASET_MODEL,
            subcategory=ALL_FIQA,
            labels={"figure": "EDC: FNMR vs discard, fixed threshold"},
        ),
        erc=report(
            "results/report/{dataset}/{model}/erc.svg",
            caption="../report/erc.rst",
            category=DATASET_MODEL,
            subcategory=ALL_FIQA,
            labels={"figure": "ERC: FNMR vs discard, threshold per step"},
        ),
    log:
        "logs/edc_chart/{dataset}/{model}.log",
    benchmark:
        "benchmarks/edc_chart/{dataset}/{model}.tsv"
    conda:
        ENV
    params:
        fiqa=list(config["fiqa"]),
    script:
        f"{SCRIPTS}/edc_chart.py"


rule region_table:
    input:
        variation_results,
    output:
        report(
            "results/report/regions.csv",
            caption="../report/region_table.rst",
            category=SUMMARY,
            subcategory="all analyses",
            labels={"table": "2 inside vs outside per bin (CSV)"},
        ),
    log:
        "logs/region_table/all.log",
    benchmark:
        "benchmarks/region_table/all.tsv"
    conda:
        ENV
    params:
        analyses=analysis_keys,
    script:
        f"{SCRIPTS}/region_table.py"


rule summary:
    input:
        variation=variation_results,
        edc=edc_results,
        rejected=expand("results/{dataset}/rejected.csv", dataset=config["datasets"]),
        faces=expand("results/{dataset}/faces.nc", dataset=config["datasets"]),  # image counts
        cams=cam_results,  # what each CAM's weights add (baseline_r)
        trust=trust_results,
    output:
        html=report(
            "results/report/summary.html",
            caption="../report/summary.rst",
            category=SUMMARY,
            subcategory="all analyses",
            labels={"table": "1 front page: ratios, intervals, p-values, pAUC, provenance"},
        ),
        csv=report(
            "results/report/summary.csv",
            caption="../report/summary.rst",
            category=SUMMARY,
            subcategory="all analyses",
            labels={"table": "1 front page numbers (CSV)"},
        ),
        trust=report(
            "results/report/trust.csv",
            caption="../report/trust.rst",
            category=SUMMARY,
            subcategory="all analyses",
            labels={"table": "can the maps be trusted? (CSV)"},
        ),
        forest="results/report/forest.png",
        weights=report(
            "results/report/cam_weights.csv",
            caption="../report/summary.rst",
            category=SUMMARY,
            subcategory="all analyses",
            labels={"table": "what each CAM's channel weights add (CSV)"},
        ),
    log:
        "logs/summary/all.log",
    benchmark:
        "benchmarks/summary/all.tsv"
    conda:
        ENV
    params:
        analyses=analysis_keys,
        cams=cam_keys,
        trust=trust_keys,
        evaluations=evaluation_keys,
        datasets=list(config["datasets"]),
        config=config,
    script:
        f"{SCRIPTS}/summary.py"
