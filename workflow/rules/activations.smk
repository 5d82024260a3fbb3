rule embeddings:
    input:
        faces=model_faces,
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
    wildcard_constraints:
        shard=r"\d+",
    input:
        faces=model_faces,
        bins=cam_bins,
        embeddings=cam_references,
    output:
        temp("results/{dataset}/{model}/cam/{cam}/shard-{shard}.nc"),
    params:
        spec=cam_params,
        shard=cam_shard,
        model=model_spec,
        device=config["device"],
    threads: 8
    resources:
        gpu=1,
    log:
        "logs/cam/{dataset}/{model}/{cam}/shard-{shard}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/cam.py"


rule cam_gather:
    input:
        shards=cam_shards,
    output:
        "results/{dataset}/{model}/cam/{cam}.nc",
    params:
        spec=cam_params,
    log:
        "logs/cam_gather/{dataset}/{model}/{cam}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/cam_gather.py"
