from amva.stream import cam_shard_size, image_count, shard_count


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
        shard=lambda w: {"index": int(w.shard), "size": cam_shard_size(config, w.cam)},
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
        # how many shards depends on the image count, known once the faces checkpoint ran
        shards=lambda w: expand(
            "results/{dataset}/{model}/cam/{cam}/shard-{shard}.nc",
            shard=range(
                shard_count(
                    image_count(checkpoints.faces.get(dataset=w.dataset).output.faces),
                    cam_shard_size(config, w.cam),
                )
            ),
            **w,
        ),
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
