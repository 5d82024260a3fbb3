"""Every dataset format by name: each is declared once, as the ``FORMAT`` record of its module.

Adding a format is its module (a reader and a :class:`~amva.datasets.format.DatasetFormat`)
and its line below (and in the import); tests/test_registry_datasets.py holds the config
schema and config/README.md to these records.
"""

from __future__ import annotations

from amva.datasets import demo, folder, insightface_bin, lfw, manifest, packaged, pair_list
from amva.datasets.format import DatasetFormat, Fetcher

FORMATS: dict[str, DatasetFormat] = {
    module.FORMAT.name: module.FORMAT
    for module in (
        demo,
        folder,
        lfw,
        insightface_bin,
        pair_list,
        manifest,
        packaged,
    )
}


def get_format(name: str) -> DatasetFormat:
    """The record of a ``format:`` name, with the valid names in the error."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"datasets format {name!r} is not supported; use one of {', '.join(FORMATS)}") from None


def photo_sets() -> dict[str, Fetcher]:
    """Every photo set a format fetches by name, and its fetcher."""
    return {name: fetch for fmt in FORMATS.values() for name, fetch in fmt.photo_sets.items()}
