rule demo_sources:
    output:
        directory("resources/demo"),
    log:
        "logs/demo_sources/demo.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/demo_sources.py"


checkpoint faces:
    input:
        sources=dataset_sources,
    output:
        faces="results/{dataset}/faces.nc",
        pairs="results/{dataset}/pairs.nc",
        rejected="results/{dataset}/rejected.csv",
    params:
        spec=dataset_spec,
        seed=config["seed"],
    log:
        "logs/faces/{dataset}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/faces.py"
