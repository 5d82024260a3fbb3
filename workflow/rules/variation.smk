rule variation:
    input:
        cam="results/{dataset}/{model}/cam/{cam}.nc",
        bins="results/{dataset}/bins/{fiqa}.nc",
        trust=trust_result,
    output:
        "results/{dataset}/{model}/{cam}/variation/{fiqa}.nc",
    log:
        "logs/variation/{dataset}/{model}/{cam}/{fiqa}.log",
    conda:
        ENV
    params:
        face_mask=config["face_mask"],
        template=model_template,
        statistics=config["statistics"],
        seed=config["seed"],
    script:
        f"{SCRIPTS}/variation.py"
