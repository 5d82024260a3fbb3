rule embeddings:
    input:
        faces="results/{dataset}/faces.nc",
    output:
        "results/{dataset}/{model}/embeddings.nc",
    params:
        model=model_spec,
        device=config["device"],
    threads: 8
    resources:
        gpu=1,
    log:
        "logs/embeddings/{dataset}/{model}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/embeddings.py"


rule cam:
    input:
        faces="results/{dataset}/faces.nc",
        bins=cam_bins,
    output:
        "results/{dataset}/{model}/cam/{cam}.nc",
    params:
        spec=cam_params,
        model=model_spec,
        device=config["device"],
    threads: 8
    resources:
        gpu=1,
    log:
        "logs/cam/{dataset}/{model}/{cam}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/cam.py"
