rule bins:
    input:
        quality="results/{dataset}/quality/{fiqa}.nc",
    output:
        "results/{dataset}/bins/{fiqa}.nc",
    params:
        bins=config["bins"],
    log:
        "logs/bins/{dataset}/{fiqa}.log",
    conda:
        ENV
    script:
        f"{SCRIPTS}/bins.py"
