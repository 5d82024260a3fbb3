rule embeddings:
    input:
        faces=model_faces,
    output:
        "results/{dataset}/{model}/embeddings.nc",
    log:
        "logs/embeddings/{dataset}/{model}.log",
    benchmark:
        "benchmarks/embeddings/{dataset}/{model}.tsv"
    conda:
        ENV
    threads: 8
    resources:
        gpu=1,
    params:
        model=model_spec,
        device=config["device"],
    script:
        f"{SCRIPTS}/embeddings.py"


rule cam:
    input:
        faces=model_faces,
        bins=cam_bins,
        embeddings=cam_references,
    output:
        temp("results/{dataset}/{model}/cam/{cam}/shard-{shard}.nc"),
    log:
        "logs/cam/{dataset}/{model}/{cam}/shard-{shard}.log",
    benchmark:
        "benchmarks/cam/{dataset}/{model}/{cam}/shard-{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV
    threads: 8
    resources:
        gpu=1,
    params:
        spec=cam_params,
        shard=cam_shard,
        model=model_spec,
        device=config["device"],
    script:
        f"{SCRIPTS}/cam.py"


rule cam_gather:
    input:
        shards=cam_shards,
    output:
        "results/{dataset}/{model}/cam/{cam}.nc",
    log:
        "logs/cam_gather/{dataset}/{model}/{cam}.log",
    benchmark:
        "benchmarks/cam_gather/{dataset}/{model}/{cam}.tsv"
    conda:
        ENV
    params:
        spec=cam_params,
    script:
        f"{SCRIPTS}/cam_gather.py"


rule trust:
    input:
        faces=model_faces,
        cam="results/{dataset}/{model}/cam/{cam}.nc",
        bins=cam_fiqa_bins,
        embeddings=cam_references,
    output:
        "results/{dataset}/{model}/trust/{cam}.nc",
    log:
        "logs/trust/{dataset}/{model}/{cam}.log",
    benchmark:
        "benchmarks/trust/{dataset}/{model}/{cam}.tsv"
    conda:
        ENV
    threads: 8
    resources:
        gpu=1,
    params:
        spec=cam_params,
        trust=trust_params,
        model=model_spec,
        device=config["device"],
        statistics=trust_statistics,
        seed=config["seed"],
    script:
        f"{SCRIPTS}/trust.py"
