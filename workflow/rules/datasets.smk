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


# A model with another crop (dlib's 150 px chip) reads the dataset aligned to its template:
# the same photos, detections and images as faces.nc, in its order (the script checks).
rule faces_template:
    input:
        sources=dataset_sources,
        reference="results/{dataset}/faces.nc",
    output:
        "results/{dataset}/faces-{template}.nc",
    params:
        spec=dataset_spec,
        seed=config["seed"],
    log:
        "logs/faces_template/{dataset}/{template}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/faces_template.py"
