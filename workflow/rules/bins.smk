rule bins:
    input:
        quality="results/{dataset}/quality/{fiqa}.nc",
        faces="results/{dataset}/faces.nc",  # the grouping labels
    output:
        "results/{dataset}/bins/{fiqa}.nc",
    params:
        bins=bins_params,
    log:
        "logs/bins/{dataset}/{fiqa}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/bins.py"
