rule quality:
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
