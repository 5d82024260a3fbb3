"""Can one CAM's maps on one model be trusted? Cascading randomisation, the null model's maps and
deletion/insertion faithfulness, on the images the CAM's FIQA bins use."""

import numpy as np
import torch

from amva.bins import binned_images
from amva.cam import cam_from_config, images_per_call
from amva.cam.extract import extract
from amva.cam.faithfulness import Embedder, Perturbation, curves, image_seed
from amva.cam.randomise import ALL, cascade, randomised
from amva.cam.targets import identity_means
from amva.embeddings import embed
from amva.io import read_dataset, write_dataset
from amva.models import load_for_job, to_tensor
from amva.runlog import batches, log_to
from amva.stream import open_lazy
from amva.trust import sample, trust_dataset

sm = snakemake  # noqa: F821


def cap(key: str) -> int | None:
    """A sample size of the trust settings; None for ``all``."""
    return None if sm.params.trust[key] == "all" else int(sm.params.trust[key])


with (
    log_to(sm.log[0]) as log,
    open_lazy(sm.input.faces, required=("pixels",)) as faces,
    open_lazy(sm.input.cam, required=("maps", "maps_native")) as cams,
):
    spec, trust, seed = sm.params.spec, sm.params.trust, int(sm.params.seed)
    model, device = load_for_job(sm.params.model, sm.params.device, sm.threads)
    bins = [read_dataset(path, required=("bin",)) for path in sm.input.bins]
    ids = np.asarray(binned_images(bins))
    missing = np.setdiff1d(ids, cams["image"].values)
    if missing.size:
        raise ValueError(f"{sm.input.cam}: no map for {missing.size} binned images (e.g. {missing[0]}); re-run its CAM")
    groups = bins[0]["group"].sel(image=ids).values if "group" in bins[0] else ids
    trained = cams["maps"].sel(image=ids).values.astype(np.float32)
    cam = cam_from_config(model, spec)
    steps, note = cascade(model, cam.layer, trust["cascade"])
    log.info("cascading randomisation: %s", note)
    chosen = sample(ids, cap("cascade_images"), seed)
    by_step = []
    for step in steps:
        images = ids if step.name == ALL and trust["null_model"] else chosen
        log.info("step %s: %d blocks randomised, maps of %d images", step.name, len(step.blocks), images.size)
        random_model = randomised(model, step, seed)
        subset = faces.sel(image=images)
        references = None
        if sm.input.embeddings:  # identity_cosine: identity means of the randomised model's own embeddings
            with torch.inference_mode():
                embeddings = embed(subset, random_model, device)["embedding"]
            references = identity_means(embeddings, subset["identity"].load())
        maps = extract(subset, cam_from_config(random_model, spec), device, images_per_call(spec, device), references)
        by_step.append((images, maps["maps"].values.astype(np.float32)))
    how = Perturbation(
        trust["fractions"], trust["random_orders"], trust["baseline"], float(trust["blur_sigma"]), trust["unit"]
    )
    faithful = sample(ids, cap("faithfulness_images"), seed)
    log.info("deletion/insertion curves of %d images (%d steps, %d random orders)", faithful.size, how.fractions,
             how.random_orders)  # fmt: skip
    embed = Embedder(model, (3, faces.sizes["y"], faces.sizes["x"]), device)
    parts = []
    for chunk in batches(np.arange(faithful.size), 8, "faithfulness"):
        chosen_ids = faithful[chunk]
        x = to_tensor(faces["pixels"].sel(image=chosen_ids).values, device)
        native = cams["maps_native"].sel(image=chosen_ids).values
        parts.append(curves(embed, x, native, [image_seed(seed, i) for i in chosen_ids], how))
    res = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    stats = sm.params.statistics
    ds = trust_dataset(
        ids, groups, trained, steps, by_step, (faithful, res), how, stats["n_boot"], stats["min_groups"], seed
    )
    ds.attrs.update(cascade=note, layer=cam.layer, cam_method=spec["method"])
    write_dataset(ds, sm.output[0], {"trust": dict(trust), "cam": dict(spec), "seed": seed, **sm.wildcards})
    for s in ds["step"].values:
        log.info(
            "step %s: median Spearman %.3f, SSIM %.3f",
            s,
            ds["spearman_median"].sel(step=s).item(),
            ds["ssim_median"].sel(step=s).item(),
        )
    log.info(
        "faithfulness: deletion %.4f, insertion %.4f (medians)",
        ds["deletion_faithfulness_median"].item(),
        ds["insertion_faithfulness_median"].item(),
    )
