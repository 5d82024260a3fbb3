rule quality:
    wildcard_constraints:
        fiqa=computed_fiqa(),
    input:
        faces="results/{dataset}/faces.nc",
    output:
        "results/{dataset}/quality/{fiqa}.nc",
    params:
        spec=fiqa_spec,
        model=fiqa_model_spec,
        seed=config["seed"],
        device=config["device"],
    threads: 8
    resources:
        gpu=1,
    log:
        "logs/quality/{dataset}/{fiqa}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/quality.py"


rule import_scores:
    wildcard_constraints:
        fiqa=imported_fiqa(),
    input:
        faces="results/{dataset}/faces.nc",
        scores=scores_file,
    output:
        quality="results/{dataset}/quality/{fiqa}.nc",
        problems="results/{dataset}/quality/{fiqa}.problems.csv",
    params:
        spec=fiqa_spec,
    log:
        "logs/import_scores/{dataset}/{fiqa}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/import_scores.py"


rule quality_summary:
    input:
        faces="results/{dataset}/faces.nc",
        quality=dataset_fiqa_files("quality/{fiqa}.nc"),
        bins=dataset_fiqa_files("bins/{fiqa}.nc"),
    output:
        validation=report(
            "results/{dataset}/quality/validation.csv",
            caption="../report/validation.rst",
            category="FIQA methods",
            subcategory="{dataset}",
            labels={"table": "quality vs degradation severity"},
        ),
        agreement=report(
            "results/{dataset}/quality/agreement.csv",
            caption="../report/agreement.rst",
            category="FIQA methods",
            subcategory="{dataset}",
            labels={"table": "agreement between FIQA methods"},
        ),
    params:
        fiqa=list(config["fiqa"]),
    log:
        "logs/quality_summary/{dataset}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/quality_summary.py"
