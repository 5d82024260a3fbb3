"""insightface verification packs (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, …).

A pack is a pickle of ``(images, issame)``: ``images`` a list of encoded image bytes
(JPEG/PNG, already aligned 112x112), ``issame`` one bool per pair; pair ``i`` compares
images ``2i`` and ``2i+1``. Image ids are ``"<index:05d>"``; identities are unknown
(``""``). The pickle is read with :class:`SafeUnpickler`, which refuses every global
outside a short numpy allow-list, so a crafted pack cannot run code.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amva.datasets.common import Entry, Listing, Options, Pair, load_entries, sample
from amva.datasets.format import DatasetFormat
from amva.options import Option

ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)
"""The only globals a pack may name: numpy's array reconstruction."""


class UnsafePickle(pickle.UnpicklingError):
    """A pickle naming a global outside :data:`ALLOWED_GLOBALS`."""


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` allows only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickle(
            f"refusing to load global {module}.{name} from a verification pack: only numpy arrays are "
            "allowed (a pack naming other callables could run code)"
        )


def load_pack(path: str | Path) -> tuple[list[bytes], list[bool]]:
    """The encoded images and issame flags of a pack, loaded without running code."""
    path = Path(path)
    with path.open("rb") as f:
        try:
            obj = SafeUnpickler(f, encoding="bytes").load()
        except UnsafePickle as err:
            raise ValueError(f"{path}: {err}") from None
        except Exception as err:
            raise ValueError(f"{path}: not a readable verification pack ({type(err).__name__}: {err})") from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError(f"{path}: expected a pickled (images, issame) pair, got {type(obj).__name__}")
    bins, issame = obj
    images = [bytes(np.asarray(b, dtype=np.uint8).tobytes()) if not isinstance(b, bytes) else b for b in bins]
    return images, [bool(x) for x in np.asarray(issame).ravel()]


def read_insightface_bin(path: Path, spec: Mapping[str, Any], opts: Options) -> Listing:
    """The images the (sampled) pairs use, and the pairs; ``aligned`` defaults to true.

    A pack is one pickle, so its encoded images are all in memory (compressed, ~5 kB each);
    they are decoded one at a time.
    """
    images, issame = load_pack(path)
    pairs = [Pair(f"{2 * i:05d}", f"{2 * i + 1:05d}", same, i) for i, same in enumerate(issame)]
    pairs = sample(pairs, opts.limit, opts.seed)
    used = sorted({int(x) for p in pairs for x in (p.a, p.b) if int(x) < len(images)})
    entries = [Entry(f"{i:05d}", "", data=images[i], where=f"{path}[{i}]") for i in used]
    return Listing(load_entries(entries, opts), [], pairs, str(path))


FORMAT = DatasetFormat(
    "insightface_bin",
    "a verification pack (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`…)",
    read_insightface_bin,
    options={"path": Option(str, None, "the .bin pack", required=True, path=True)},
    aligned=True,  # packs hold 112x112 ArcFace crops
)
