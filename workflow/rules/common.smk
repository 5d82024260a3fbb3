from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")


ENV = "../../envs/amva.yaml"
# Rules name their scripts relative to this file; the amva package does the work.
SCRIPTS = "../../scripts"


def check_references():
    """Fail before any job runs when an entry names something that is not configured."""
    for name, spec in config["fiqa"].items():
        if spec["model"] not in config["models"]:
            raise ValueError(
                f"config fiqa.{name}.model = {spec['model']!r}: not a key of models "
                f"({', '.join(config['models'])})"
            )
    for name, spec in config["cams"].items():
        if spec["method"] == "gradcam" and spec["target"] == "self_cosine":
            raise ValueError(
                f"config cams.{name}.target = self_cosine: its gradient is zero at the image, "
                "so Grad-CAM maps would be empty; use self_projection (the default)"
            )


check_references()


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    model="|".join(config["models"]),
    fiqa="|".join(config["fiqa"]),
    cam="|".join(config["cams"]),


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def fiqa_spec(wildcards):
    return config["fiqa"][wildcards.fiqa]


def cam_spec(wildcards):
    return config["cams"][wildcards.cam]


def model_spec(wildcards):
    return config["models"][wildcards.model]


def fiqa_model_spec(wildcards):
    return config["models"][config["fiqa"][wildcards.fiqa]["model"]]


def analyses():
    """The cross product the config asks for: dataset × model × CAM × FIQA."""
    for dataset in config["datasets"]:
        for model in config["models"]:
            for cam in config["cams"]:
                for fiqa in config["fiqa"]:
                    yield dict(dataset=dataset, model=model, cam=cam, fiqa=fiqa)


def all_outputs():
    outputs = [f"results/report/{a['dataset']}/{a['model']}/{a['cam']}/{a['fiqa']}/maps.png" for a in analyses()]
    outputs += [f"results/report/{a['dataset']}/{a['model']}/{a['cam']}/{a['fiqa']}/regions.svg" for a in analyses()]
    outputs += [f"results/report/{d}/{m}/edc.svg" for d in config["datasets"] for m in config["models"]]
    return outputs


def dataset_sources(wildcards):
    return dataset_spec(wildcards)["sources"]


def cam_bins(wildcards):
    """Score-CAM on a large set is costly: with ``images: binned`` only binned images get maps."""
    if cam_spec(wildcards)["images"] == "all":
        return []
    return expand("results/{dataset}/bins/{fiqa}.nc", dataset=wildcards.dataset, fiqa=config["fiqa"])


def edc_inputs(wildcards):
    return expand("results/{dataset}/{model}/edc/{fiqa}.nc", fiqa=config["fiqa"], **wildcards)
