rule edc:
    input:
        pairs="results/{dataset}/pairs.nc",
        embeddings="results/{dataset}/{model}/embeddings.nc",
        quality="results/{dataset}/quality/{fiqa}.nc",
    output:
        "results/{dataset}/{model}/edc/{fiqa}.nc",
    log:
        "logs/edc/{dataset}/{model}/{fiqa}.log",
    benchmark:
        "benchmarks/edc/{dataset}/{model}/{fiqa}.tsv"
    conda:
        ENV
    params:
        evaluation=config["evaluation"],
    script:
        f"{SCRIPTS}/edc.py"
