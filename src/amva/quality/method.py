"""The record of a FIQA method, declared once next to its code, and the dataset every method's scores become.

A record says all that a caller, the config schema, the workflow and the docs need to know
of a method: its name, its options (type, default, meaning), the direction of its raw score,
its kind (what it is computed from, which decides where its job runs) and the options that
name the files it reads. ``tests/test_registry_fiqa.py`` holds the schema and
config/README.md to the records, so none of them can drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr

from amva.options import Option

Kind = Literal["model", "image", "imported"]
"""``model``: computed with an FR model (a GPU job where there is one); ``image``: from the pixels
alone (a CPU job); ``imported``: read from the score file of a tool amva does not run."""


SEED = Option(int, 0, "seeds each image's random draws, so a score does not depend on the batch")
"""The ``seed`` option of a seeded method; the workflow passes its top-level seed unless an entry sets one."""


@dataclass(frozen=True)
class Method:
    """A FIQA method: what it is called, takes, computes from and returns.

    ``fn(model, images, ids, **options) -> raw scores`` computes the scores (None for an
    imported method). ``higher_is_better`` is the direction of the raw score; None where
    the caller says it (an imported tool's direction is the ``higher_is_better`` option).
    ``inputs`` are the options that name files the method reads.
    """

    name: str
    kind: Kind
    higher_is_better: bool | None
    options: Mapping[str, Option] = field(default_factory=dict)
    fn: Callable[..., np.ndarray] | None = None
    inputs: tuple[str, ...] = ()

    @property
    def needs_model(self) -> bool:
        """Whether the method runs an FR model (``model`` is then not None)."""
        return self.kind == "model"

    def arguments(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every option's value: the defaults, overridden by ``given``; an error names the option at fault."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ValueError(f"{', '.join(unknown)} is not an option of {self.name}; options: {known}")
        missing = [name for name, option in self.options.items() if option.required and name not in given]
        if missing:
            raise ValueError(f"{self.name} needs {', '.join(missing)}")
        return {**{name: option.default for name, option in self.options.items() if not option.required}, **given}


def quality_dataset(
    image: np.ndarray,
    raw: np.ndarray,
    method: str,
    higher_is_better: bool,
    source: str = "the method defines it",
    **attrs: str | float,
) -> xr.Dataset:
    """Quality per image oriented "higher = better", next to the raw score: the result of every method.

    One function for computed and imported scores, so the flip is made and recorded one way.
    ``source`` says where the raw score comes from; ``attrs`` are further dataset attributes.
    """
    raw = np.asarray(raw, dtype=np.float64)
    ds = xr.Dataset(
        {"quality": ("image", raw if higher_is_better else -raw), "raw": ("image", raw)},
        coords={"image": image},
        attrs={"method": method, "higher_is_better_raw": int(higher_is_better), "oriented": "higher = better", **attrs},
    )
    ds["quality"].attrs = {"description": f"{method} quality, higher = better"}
    ds["raw"].attrs = {"description": f"{method} score as {source}"}
    return ds
