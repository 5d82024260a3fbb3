rule figures:
    input:
        amva="results/{dataset}/{model}/{cam}/amva/{fiqa}.nc",
        faces="results/{dataset}/faces.nc",
    output:
        maps=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/maps.png",
            caption="../report/maps.rst",
            category="Activation-map variation",
            subcategory="{dataset} / {model}",
            labels={"CAM": "{cam}", "FIQA": "{fiqa}", "figure": "maps"},
        ),
        regions=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/regions.svg",
            caption="../report/regions.rst",
            category="Activation-map variation",
            subcategory="{dataset} / {model}",
            labels={"CAM": "{cam}", "FIQA": "{fiqa}", "figure": "inside vs outside"},
        ),
        density=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/density.svg",
            caption="../report/density.rst",
            category="Activation-map variation",
            subcategory="{dataset} / {model}",
            labels={"CAM": "{cam}", "FIQA": "{fiqa}", "figure": "AM-V distribution"},
        ),
        profiles=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/profiles.svg",
            caption="../report/profiles.rst",
            category="Activation-map variation",
            subcategory="{dataset} / {model}",
            labels={"CAM": "{cam}", "FIQA": "{fiqa}", "figure": "AM-V profiles"},
        ),
        deviations=report(
            "results/report/{dataset}/{model}/{cam}/{fiqa}/deviations.png",
            caption="../report/deviations.rst",
            category="Activation-map variation",
            subcategory="{dataset} / {model}",
            labels={"CAM": "{cam}", "FIQA": "{fiqa}", "figure": "LOW images vs HIGH mean"},
        ),
    log:
        "logs/figures/{dataset}/{model}/{cam}/{fiqa}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/figures.py"


rule edc_chart:
    input:
        edc_inputs,
    output:
        report(
            "results/report/{dataset}/{model}/edc.svg",
            caption="../report/edc.rst",
            category="Error versus discard",
            subcategory="{dataset} / {model}",
            labels={"figure": "EDC"},
        ),
    params:
        fiqa=list(config["fiqa"]),
    log:
        "logs/edc_chart/{dataset}/{model}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/edc_chart.py"


rule region_table:
    input:
        amva_results(),
    output:
        report(
            "results/report/regions.csv",
            caption="../report/region_table.rst",
            category="Activation-map variation",
            subcategory="All analyses",
            labels={"figure": "inside vs outside, all analyses"},
        ),
    params:
        analyses=analysis_keys(),
    log:
        "logs/region_table/all.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/region_table.py"
