rule figures:
    input:
        "results/{dataset}/{model}/{cam}/amva/{fiqa}.nc",
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
