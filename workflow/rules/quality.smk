# FIQA from the image alone (BRISQUE, OFIQ measures, sharpness, qualityface): CPU jobs.
rule image_quality:
    input:
        faces=fiqa_faces,
    output:
        "results/{dataset}/quality/{fiqa}.nc",
    log:
        "logs/image_quality/{dataset}/{fiqa}.log",
    benchmark:
        "benchmarks/image_quality/{dataset}/{fiqa}.tsv"
    wildcard_constraints:
        fiqa=fiqa_names("image"),
    conda:
        ENV
    threads: 2
    params:
        spec=fiqa_spec,
        model=fiqa_model_spec,
        seed=config["seed"],
        device=config["device"],
    script:
        f"{SCRIPTS}/quality.py"


# FIQA that runs an FR model: the same job on a GPU (a cluster queues it on GPU nodes).
use rule image_quality as quality with:
    log:
        "logs/quality/{dataset}/{fiqa}.log",
    benchmark:
        "benchmarks/quality/{dataset}/{fiqa}.tsv"
    wildcard_constraints:
        fiqa=fiqa_names("model"),
    threads: 8
    resources:
        gpu=1,


rule import_scores:
    input:
        faces="results/{dataset}/faces.nc",
        scores=fiqa_inputs,
    output:
        quality="results/{dataset}/quality/{fiqa}.nc",
        problems="results/{dataset}/quality/{fiqa}.problems.csv",
    log:
        "logs/import_scores/{dataset}/{fiqa}.log",
    benchmark:
        "benchmarks/import_scores/{dataset}/{fiqa}.tsv"
    wildcard_constraints:
        fiqa=fiqa_names("imported"),
    conda:
        ENV
    params:
        spec=fiqa_spec,
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
    log:
        "logs/quality_summary/{dataset}.log",
    benchmark:
        "benchmarks/quality_summary/{dataset}.tsv"
    conda:
        ENV
    params:
        fiqa=list(config["fiqa"]),
    script:
        f"{SCRIPTS}/quality_summary.py"
