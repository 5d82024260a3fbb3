from pathlib import Path

import yaml
from snakemake.utils import validate

from amva.cam import METHODS as CAM_METHODS
from amva.cam import get_method as get_cam_method
from amva.datasets.align import ALIGN_TEMPLATES
from amva.datasets.registry import FORMATS as DATASET_FORMATS
from amva.datasets.registry import photo_sets
from amva.models import KINDS as MODEL_KINDS
from amva.models import align_template
from amva.quality import REGISTRY as FIQA_METHODS
from amva.quality.config import check_entry
from amva.schema import canonical, coerce
from amva.stream import image_count, shard_count

# Numbers given with --config arrive as strings: type them as the schema says, then validate
# (which fills the defaults), then sort every mapping's keys, so that a config written in
# another key order or style gives every rule the same params and inputs (nothing re-runs).
SCHEMA = yaml.safe_load(Path(workflow.source_path("../schemas/config.schema.yaml")).read_text())
config.update(coerce(dict(config), SCHEMA))
validate(config, schema="../schemas/config.schema.yaml")
_canonical = canonical(config)
config.clear()
config.update(_canonical)


PHOTO_SETS = list(photo_sets())  # photos fetched from packages into resources/<set>
# Job environment under --software-deployment-method conda: `device: cpu` gets the CPU build
# of torch; `auto` and `cuda` need a CUDA build (which also runs where no GPU is found).
ENV = "../../envs/amva.yaml" if config["device"] == "cpu" else "../../envs/amva-gpu.yaml"
# Rules name their scripts relative to this file; the amva package does the work.
SCRIPTS = "../../scripts"
# the keys of a cams: entry that are not its method's options: the schema's, less the registered methods' options
CAM_ENTRY_KEYS = set(SCHEMA["properties"]["cams"]["additionalProperties"]["properties"]) - {
    name for cam in CAM_METHODS.values() for name in cam.options
}


def check_references():
    """Fail before any job runs when an entry names something that is not configured."""
    prealigned = [d for d, s in config["datasets"].items() if DATASET_FORMATS[s["format"]].prealigned(s)]
    arcface = ", ".join(k for k, kind in MODEL_KINDS.items() if kind.template == "arcface112")
    for name, spec in config["models"].items():
        template = align_template(spec)
        if template != "arcface112" and prealigned:
            raise ValueError(
                f"config models.{name}: a {spec['kind']} model needs {template} crops, but datasets "
                f"{prealigned} are pre-aligned ArcFace 112x112 crops that cannot be re-aligned; give their "
                f"original photos (aligned: false), or use an arcface112 model ({arcface}) on them"
            )
    for name, spec in config["fiqa"].items():
        if "model" in spec and spec["model"] not in config["models"]:
            raise ValueError(
                f"config fiqa.{name}.model = {spec['model']!r}: not a key of models " f"({', '.join(config['models'])})"
            )
        check_entry(name, spec)
    for name, spec in config["cams"].items():
        for key in ("fiqa", "datasets"):
            unknown = set(spec.get(key, [])) - set(config[key])
            if unknown:
                raise ValueError(f"config cams.{name}.{key} names {sorted(unknown)}: not keys of {key}")
        try:  # the method, its target and its own options, as its record (amva.cam) declares them
            cam = get_cam_method(spec["method"])
            target = cam.target_name(spec["target"])
            cam.option_values({key: value for key, value in spec.items() if key not in CAM_ENTRY_KEYS})
        except ValueError as err:
            raise ValueError(f"config cams.{name}: {err}") from None
        if cam.needs_gradients and target == "self_cosine":
            raise ValueError(
                f"config cams.{name}.target = self_cosine: its gradient is zero at the image, "
                f"so {spec['method']} maps would be empty; use self_projection"
            )


check_references()


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    model="|".join(config["models"]),
    fiqa="|".join(config["fiqa"]),
    cam="|".join(config["cams"]),
    template="|".join(t for t in ALIGN_TEMPLATES if t != "arcface112"),


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_group(dataset):
    """The grouping label of bins and inference: the dataset's own, else its format's default."""
    spec = config["datasets"][dataset]
    return spec.get("group", DATASET_FORMATS[spec["format"]].group)


def dataset_bins(dataset):
    """A dataset's bins: its own ``bins`` keys over the top-level ones, and its grouping label."""
    spec = config["datasets"][dataset]
    return canonical({**config["bins"], **spec.get("bins", {}), "group": dataset_group(dataset)})


def bins_params(wildcards):
    return dataset_bins(wildcards.dataset)


def fiqa_spec(wildcards):
    return config["fiqa"][wildcards.fiqa]


def cam_spec(wildcards):
    """A CAM's entry; a job without a ``batch_size`` picks its method's own for its device."""
    return canonical(config["cams"][wildcards.cam])


def cam_params(wildcards):
    """The CAM entry without its trust keys, and without its FIQA list unless that list decides
    which images get maps: changing either re-runs only the jobs that read it."""
    spec = {k: v for k, v in cam_spec(wildcards).items() if k != "trust"}
    return spec if spec["images"] == "binned" else {k: v for k, v in spec.items() if k != "fiqa"}


def trust_spec(cam):
    """A CAM's trust settings: its own ``trust`` keys over the top-level ones."""
    return canonical({**config["trust"], **config["cams"][cam].get("trust", {})})


def trust_params(wildcards):
    return trust_spec(wildcards.cam)


def trust_statistics(wildcards):
    """The statistics keys the trust job uses (not n_perm: changing it re-runs no trust job)."""
    return {key: config["statistics"][key] for key in ("n_boot", "min_groups")}


def trust_result(wildcards):
    """The trust file an AMVA result reads its null model and faithfulness from (none when off)."""
    if not trust_spec(wildcards.cam)["enabled"]:
        return []
    return "results/{dataset}/{model}/trust/{cam}.nc".format(**wildcards)


def cam_fiqa_bins(wildcards):
    """The bins of every FIQA instance a CAM is analysed for: whose images the trust checks use."""
    return expand("results/{dataset}/bins/{fiqa}.nc", dataset=wildcards.dataset, fiqa=cam_fiqa(wildcards.cam))


def model_spec(wildcards):
    return config["models"][wildcards.model]


def model_template(wildcards):
    return align_template(model_spec(wildcards))


def faces_file(dataset, model=None):
    """The aligned faces a model reads: faces.nc (ArcFace 112, also for image-only FIQA),
    or faces-<template>.nc, the same images aligned once per other template (dlib150)."""
    template = align_template(config["models"][model]) if model else "arcface112"
    return f"results/{dataset}/faces.nc" if template == "arcface112" else f"results/{dataset}/faces-{template}.nc"


def model_faces(wildcards):
    return faces_file(wildcards.dataset, wildcards.model)


def fiqa_faces(wildcards):
    return faces_file(wildcards.dataset, config["fiqa"][wildcards.fiqa].get("model"))


def fiqa_model_spec(wildcards):
    """The FR model a computed FIQA uses; empty for methods that look at the image only."""
    name = config["fiqa"][wildcards.fiqa].get("model")
    return config["models"][name] if name else {}


def _fiqa_kind(spec):
    """The method's kind: model (runs an FR model: GPU jobs), image (CPU jobs) or imported (a score file)."""
    return FIQA_METHODS[spec["method"]].kind


def fiqa_names(kind):
    """The FIQA instances of one kind, as a wildcard constraint (never matching when none)."""
    return "|".join(n for n, s in config["fiqa"].items() if _fiqa_kind(s) == kind) or "^$"


def fiqa_inputs(wildcards):
    """The files an imported FIQA reads (the options its method's record names); ``{dataset}`` names the dataset."""
    spec = fiqa_spec(wildcards)
    return [spec[key].replace("{dataset}", wildcards.dataset) for key in FIQA_METHODS[spec["method"]].inputs]


def cam_fiqa(cam):
    """The FIQA instances a CAM's maps are analysed for (``cams.<cam>.fiqa``, default all)."""
    return config["cams"][cam].get("fiqa", list(config["fiqa"]))


def cam_datasets(cam):
    """The datasets a CAM runs on (``cams.<cam>.datasets``, default all)."""
    return config["cams"][cam].get("datasets", list(config["datasets"]))


def usable_datasets():
    """The datasets with at least one usable image, known once each one's faces checkpoint ran.

    A dataset whose every input was rejected gets no FIQA, CAM or analysis job; its
    rejected.csv says why, and the front page names it. The other datasets go on.
    """
    return [d for d in config["datasets"] if image_count(checkpoints.faces.get(dataset=d).output.faces) > 0]


def analyses():
    """The cross product the config asks for: usable dataset × model × CAM × (the CAM's) FIQA."""
    for dataset in usable_datasets():
        for model in config["models"]:
            for cam in config["cams"]:
                if dataset not in cam_datasets(cam):
                    continue
                for fiqa in cam_fiqa(cam):
                    yield dict(dataset=dataset, model=model, cam=cam, fiqa=fiqa)


def evaluations():
    """Every (usable dataset, model, FIQA) with an EDC/ERC result, in one order for paths and keys."""
    return [(d, m, f) for d in usable_datasets() for m in config["models"] for f in config["fiqa"]]


def dataset_fiqa_files(pattern):
    """Input function: ``results/{dataset}/<pattern>`` for every FIQA instance, in config order."""

    def files(wildcards):
        return expand(f"results/{{dataset}}/{pattern}", dataset=wildcards.dataset, fiqa=config["fiqa"])

    return files


def variation_results(wildcards):
    return [f"results/{a['dataset']}/{a['model']}/{a['cam']}/variation/{a['fiqa']}.nc" for a in analyses()]


def analysis_keys(wildcards):
    """One ``dataset|model|cam|fiqa`` string per AMVA result, in the order of variation_results()."""
    return ["|".join(a.values()) for a in analyses()]


def trust_results(wildcards):
    """Every (dataset, model, CAM) trust file, once each, in the order of trust_keys()."""
    return [f"results/{d}/{m}/trust/{c}.nc" for d, m, c in _trust_keys()]


def trust_keys(wildcards):
    return ["|".join(key) for key in _trust_keys()]


def _trust_keys():
    return [key for key in dict.fromkeys(_cam_keys()) if trust_spec(key[2])["enabled"]]


def cam_results(wildcards):
    """Every (dataset, model, CAM) map file an AMVA result reads, once each."""
    return [f"results/{d}/{m}/cam/{c}.nc" for d, m, c in dict.fromkeys(_cam_keys())]


def cam_keys(wildcards):
    """One ``dataset|model|cam`` string per map file, in the order of cam_results()."""
    return ["|".join(key) for key in dict.fromkeys(_cam_keys())]


def _cam_keys():
    return [(a["dataset"], a["model"], a["cam"]) for a in analyses()]


def edc_results(wildcards):
    return [f"results/{d}/{m}/edc/{f}.nc" for d, m, f in evaluations()]


def evaluation_keys(wildcards):
    return ["|".join(key) for key in evaluations()]


def all_outputs(wildcards):
    usable = usable_datasets()
    outputs = [f"results/report/{a['dataset']}/{a['model']}/{a['cam']}/{a['fiqa']}/maps.png" for a in analyses()]
    outputs += [f"results/report/{a['dataset']}/{a['model']}/{a['cam']}/{a['fiqa']}/regions.svg" for a in analyses()]
    outputs += [f"results/report/{d}/{m}/edc.svg" for d in usable for m in config["models"]]
    outputs += [f"results/report/{d}/{m}/{c}/trust.svg" for d, m, c in _trust_keys()]
    outputs.append("results/report/regions.csv")
    outputs += [f"results/{d}/quality/{t}.csv" for d in usable for t in ("validation", "agreement")]
    return outputs


def dataset_sources(wildcards):
    """The input paths of a dataset, the first what its reader reads: those its entry names, else
    resources/<set>, where rule fetch_photos fetches the photo set of its format."""
    spec = dataset_spec(wildcards)
    fmt = DATASET_FORMATS[spec["format"]]
    return fmt.inputs(spec) or [f"resources/{fmt.photo_set(spec)}"]


def cam_bins(wildcards):
    """Score-CAM on a large set is costly: with ``images: binned`` only binned images get maps."""
    if cam_spec(wildcards)["images"] == "all":
        return []
    return cam_fiqa_bins(wildcards)


def cam_references(wildcards):
    """The model's embeddings, whose identity means a CAM with target identity_cosine explains."""
    spec = cam_spec(wildcards)
    if CAM_METHODS[spec["method"]].target_name(spec["target"]) != "identity_cosine":
        return []
    return "results/{dataset}/{model}/embeddings.nc".format(**wildcards)


def cam_shard_size(cam):
    """Images per job of a CAM: its entry's ``shard_size``, else the top-level one."""
    return config["cams"][cam].get("shard_size", config["shard_size"])


def cam_shard(wildcards):
    """Which shard a cam job computes, and the shard size."""
    return {"index": int(wildcards.shard), "size": cam_shard_size(wildcards.cam)}


def cam_shards(wildcards):
    """A CAM's shard files; how many depends on the image count, known once the faces checkpoint ran."""
    n_images = image_count(checkpoints.faces.get(dataset=wildcards.dataset).output.faces)
    return expand(
        "results/{dataset}/{model}/cam/{cam}/shard-{shard}.nc",
        shard=range(shard_count(n_images, cam_shard_size(wildcards.cam))),
        **wildcards,
    )


def edc_inputs(wildcards):
    return expand("results/{dataset}/{model}/edc/{fiqa}.nc", fiqa=config["fiqa"], **wildcards)


def bins_label(dataset):
    """How a dataset's images were binned, in words (a dataset may override the top-level bins)."""
    b = dataset_bins(dataset)
    if b["mode"] == "quantiles":
        return f"{b['n']} quantile bins"
    return f"{'matched ' if b['mode'] == 'matched' else ''}HIGH/LOW, k = {b['k']} (groups: {b['group']})"


def figure_labels(figure):
    """Report labels of one analysis figure: the figure, its CAM and its bins (together unique per sub-category)."""

    def labels(wildcards):
        return {"figure": figure, "CAM": wildcards.cam, "bins": bins_label(wildcards.dataset)}

    return labels
