"""Which Score-CAM weighting, and can fewer masked passes stand in for all of them? (issue 20)

From one set of exact channel scores per image (1,024 masked passes on SFace), every candidate
weighting gives a map; each map is scored by deletion and insertion faithfulness against random
orders (the trust checks) and by its Pearson r with the unweighted channel mean. Differences are
paired per image against the channel mean's map, as medians with cluster-bootstrap 95%
intervals over the images' groups (demo: source photo; johns and wild: identity).

The fast-mode part asks how well a subset of the masked passes predicts the rest, for the default
weighting: medoid channels of a k-means over the channels' masks (each channel takes its
medoid's score), a ridge surrogate of the score on the mask, and a two-stage search (surrogate,
then the channels it ranks highest, scored exactly). Fidelity is measured on what the weights
add: the Pearson r of (map - channel-mean map) with the exact one, and the Spearman rho of the
channel weights. The surrogates reuse the exact scores of the channels they sample, so they cost
no extra passes here; their cost is the number of channels scored.

Needs the default run's faces (``make run``). Prints Markdown; ``--help`` for options.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from amva.cam import make_cam
from amva.cam.base import minmax, pearson, upsample
from amva.cam.faithfulness import Embedder, Perturbation, curves, image_seed
from amva.cam.scorecam import weigh
from amva.cam.similarity import spearman
from amva.models import load_for_job, to_tensor
from amva.trust import grouped_median

GROUP = {"demo": "source", "johns": "identity", "wild": "identity"}


def definitions(scores: np.ndarray, black: float) -> dict[str, np.ndarray]:
    """Candidate channel weights ``(C,)`` from one image's scores; the map ignores their scale."""
    s = torch.from_numpy(scores)[None]
    z = (scores - scores.mean()) / scores.std()
    return {
        "channel mean": np.full_like(scores, 1 / scores.size),
        "softmax (T = 1)": weigh(s, "softmax")[0].numpy(),
        "raw": scores,
        "ReLU(s - s_black)": np.maximum(scores - black, 0),
        "ReLU(z)": np.maximum(z, 0),
        "standardised": weigh(s, "standardised")[0].numpy(),
        "softmax (T = 0.03)": weigh(s, "softmax", 0.03)[0].numpy(),
    }


def native_map(weights: np.ndarray, acts: torch.Tensor) -> torch.Tensor:
    """``minmax(ReLU(sum_k w_k A_k))`` of one image's ``(C, h, w)`` activations: ``(1, h, w)``."""
    return minmax(F.relu(torch.einsum("c,chw->hw", torch.from_numpy(weights).float(), acts)))[None]


def added(weights: np.ndarray, acts: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """What the weights add: the upsampled map minus the channel-mean map."""
    return upsample(native_map(weights, acts), (112, 112)) - base


def unit_masks(acts: torch.Tensor) -> np.ndarray:
    """Each channel's mask on the native grid, min-max scaled as Score-CAM scales it: ``(C, h*w)``."""
    flat = acts.flatten(1).double().numpy()
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    return (flat - lo) / np.where(hi > lo, hi - lo, 1.0)


def medoids(masks: np.ndarray, g: int, rng: np.random.Generator) -> np.ndarray:
    """Each channel's stand-in: the member nearest the centre of its k-means cluster (k-means++, 10 rounds)."""
    centres = masks[rng.choice(len(masks), 1)]
    dist = ((masks - centres[0]) ** 2).sum(1)
    for _ in range(g - 1):
        centres = np.vstack([centres, masks[rng.choice(len(masks), p=dist / dist.sum())]])
        dist = np.minimum(dist, ((masks - centres[-1]) ** 2).sum(1))
    for _ in range(10):
        label = ((masks[:, None] - centres[None]) ** 2).sum(2).argmin(1)
        centres = np.stack([masks[label == c].mean(0) if (label == c).any() else centres[c] for c in range(g)])
    d = ((masks[:, None] - centres[None]) ** 2).sum(2)
    label = d.argmin(1)
    stand_in = {c: np.flatnonzero(label == c)[d[label == c, c].argmin()] for c in np.unique(label)}
    return np.array([stand_in[c] for c in label])


def surrogate(masks: np.ndarray, scores: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Scores predicted by a ridge fit on ``[m, sqrt(m), 1]`` of the ``known`` channels (exact there)."""
    feats = np.hstack([masks, np.sqrt(masks), np.ones((len(masks), 1))])
    a = feats[known]
    beta = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ scores[known])
    out = feats @ beta
    out[known] = scores[known]
    return out


def fast_modes(rng: np.random.Generator) -> dict[str, tuple[int, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
    """Name → (channels scored exactly, scores estimate from (masks, exact scores))."""

    def cluster(g: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return lambda m, s: s[medoids(m, g, rng)]

    def ridge(g: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return lambda m, s: surrogate(m, s, rng.choice(len(s), g, replace=False))

    def two_stage(g: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def run(m: np.ndarray, s: np.ndarray) -> np.ndarray:
            first = rng.choice(len(s), g, replace=False)
            guess = surrogate(m, s, first)
            rest = np.setdiff1d(np.arange(len(s)), first)
            return surrogate(m, s, np.concatenate([first, rest[np.argsort(-guess[rest])[:g]]]))

        return run

    return {
        "k-means medoids, 64": (64, cluster(64)),
        "k-means medoids, 100": (100, cluster(100)),
        "ridge surrogate, 100": (100, ridge(100)),
        "ridge surrogate, 200": (200, ridge(200)),
        "two-stage, 50 + 50": (100, two_stage(50)),
        "two-stage, 100 + 100": (200, two_stage(100)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the default run's results folder")
    parser.add_argument("--per-dataset", type=int, default=12, help="images drawn per dataset")
    parser.add_argument("--fractions", type=int, default=8)
    parser.add_argument("--random-orders", type=int, default=2)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, device = load_for_job({"kind": "sface"}, "cpu", args.threads)
    cam = make_cam(model, "scorecam")
    embed = Embedder(model, (3, 112, 112), device)
    how = Perturbation(args.fractions, args.random_orders)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, dict[str, list[float]]] = {}
    fidelity: dict[str, list[tuple[float, float]]] = {}
    groups, spreads, seconds = [], [], []
    modes = fast_modes(np.random.default_rng([args.seed, 1]))
    for dataset, label in GROUP.items():
        faces = xr.open_dataset(f"{args.results}/{dataset}/faces.nc")
        pick = np.sort(rng.choice(faces.sizes["image"], args.per_dataset, replace=False))
        x = to_tensor(faces["pixels"].isel(image=pick).values)
        for i, image in enumerate(faces["image"].values[pick]):
            start = time.perf_counter()
            acts, emb, _ = cam.capture(x[i : i + 1])
            scores = cam.scores(x[i], acts[0], emb[0]).double().numpy()
            seconds.append(time.perf_counter() - start)
            with torch.inference_mode():
                black = float(cam.target(model(torch.zeros_like(x[i : i + 1])), emb)[0])
            groups.append(f"{dataset}/{faces[label].values[pick][i]}")
            spreads.append((scores.max() - scores.min(), scores.mean()))
            a = acts[0]
            base = upsample(minmax(F.relu(a.mean(0)))[None], (112, 112))
            weights = definitions(scores, black)
            natives = np.concatenate([native_map(w, a).numpy() for w in weights.values()])
            res = curves(embed, x[i : i + 1].expand(len(weights), -1, -1, -1).contiguous(), natives,
                         [image_seed(args.seed, str(image))] * len(weights), how)  # fmt: skip
            for j, name in enumerate(weights):
                row = rows.setdefault(name, {"r": [], "deletion": [], "insertion": []})
                row["r"].append(pearson(upsample(torch.from_numpy(natives[j : j + 1]), (112, 112)), base).item())
                row["deletion"].append(res["deletion_faithfulness"][j])
                row["insertion"].append(res["insertion_faithfulness"][j])
            masks, exact = unit_masks(a), weights["standardised"]
            for mode, (_, estimate) in modes.items():
                fast = weigh(torch.from_numpy(estimate(masks, scores))[None], "standardised")[0].numpy()
                fidelity.setdefault(mode, []).append(
                    (pearson(added(fast, a, base), added(exact, a, base)).item(), spearman(fast[None], exact[None])[0])
                )
    g = np.asarray(groups)
    n, n_groups = len(g), np.unique(g).size
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads; "
          f"{n} images in {n_groups} groups; exact Score-CAM scores: median {np.median(seconds):.2f} s an image; "
          f"score range (max - min) median {np.median([s[0] for s in spreads]):.3f} around a mean of "
          f"{np.median([s[1] for s in spreads]):.3f}\n")  # fmt: skip
    print("| weighting | median r with the channel mean | deletion gain | insertion gain | images (groups) |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        cells = [f"{np.median(row['r']):.3f}"]
        for key in ("deletion", "insertion"):
            if name == "channel mean":
                cells.append(f"{np.median(row[key]):.4f} (its own)")
                continue
            diff = np.asarray(row[key]) - np.asarray(rows["channel mean"][key])
            med, lo, hi, _, _ = grouped_median(diff, g, args.n_boot, 5, args.seed)
            cells.append(f"{med:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        print(f"| {name} | {' | '.join(cells)} | {n} ({n_groups}) |")
    print(
        "\n| fast mode (standardised) | channels scored | speed-up | r of what the weights add: median, min | "
        "Spearman of the weights: median, min |"
    )
    print("|---|---|---|---|---|")
    for mode, values in fidelity.items():
        v = np.asarray(values)
        scored = modes[mode][0]
        print(f"| {mode} | {scored} | {1025 / (scored + 1):.1f}× | {np.median(v[:, 0]):.3f}, {v[:, 0].min():.3f} | "
              f"{np.median(v[:, 1]):.3f}, {v[:, 1].min():.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
