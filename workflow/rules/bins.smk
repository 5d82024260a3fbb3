rule bins:
    input:
        quality="results/{dataset}/quality/{fiqa}.nc",
        faces="results/{dataset}/faces.nc",  # the grouping labels
    output:
        "results/{dataset}/bins/{fiqa}.nc",
    log:
        "logs/bins/{dataset}/{fiqa}.log",
    benchmark:
        "benchmarks/bins/{dataset}/{fiqa}.tsv"
    conda:
        ENV
    params:
        bins=bins_params,
    script:
        f"{SCRIPTS}/bins.py"
