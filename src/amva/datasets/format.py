"""The record a dataset format is declared by, next to its reader (as xarray's backends are).

Whatever else branches on the format asks its :class:`DatasetFormat`: the build (which
reader, pre-aligned or not), the workflow (which files a config entry makes it track, the
default grouping label, which photo sets it fetches) and the tests that hold the config
schema and config/README.md to the records. Adding a format is one module that defines a
``FORMAT`` record and one line in :mod:`amva.datasets.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amva.options import Option

if TYPE_CHECKING:
    from amva.datasets.common import Listing, Options

    Reader = Callable[[Path, Mapping[str, Any], Options], Listing]
    """``(source, spec, opts) -> Listing``: source is the first of the entry's inputs."""

Fetcher = Callable[[Path], Sized]
"""Fetches a named photo set into a folder; what it fetched (its length is logged)."""


FETCHED_TO = Option(str, None, "where the photos are fetched to", path=True)
"""The ``sources`` key of formats whose photos are fetched by name (demo, packaged)."""


@dataclass(frozen=True)
class Record:
    """Something a config entry names (a dataset format, a model kind): declared once, with its own keys."""

    name: str
    meaning: str
    options: Mapping[str, Option] = field(default_factory=dict, kw_only=True)

    @property
    def required(self) -> tuple[str, ...]:
        """The keys an entry must give."""
        return tuple(key for key, option in self.options.items() if option.required)

    def defaults(self) -> dict[str, Any]:
        """The keys with a default, and the default."""
        return {key: option.default for key, option in self.options.items() if option.default is not None}

    def missing(self, spec: Mapping[str, Any]) -> list[str]:
        """The required keys ``spec`` lacks, each with what it means (for the caller's error)."""
        return [f"{key!r} ({self.options[key].meaning})" for key in self.required if key not in spec]


@dataclass(frozen=True)
class DatasetFormat(Record):
    """One dataset format: its reader, its own config keys, and the facts other code branches on.

    ``aligned``: its images are ArcFace 112x112 crops unless the entry says ``aligned: false``.
    ``group``: the grouping label of bins and inference where the entry names none.
    ``photo_sets``: the photo sets it fetches by name (empty: it reads the user's files);
    ``photo_set`` names the one an entry reads, which the caller fetches to a folder of its
    choosing where the entry names none (``sources``).
    """

    read: Reader
    aligned: bool = False
    group: str = "identity"
    photo_sets: Mapping[str, Fetcher] = field(default_factory=dict)
    photo_set: Callable[[Mapping[str, Any]], str] | None = None

    def inputs(self, spec: Mapping[str, Any]) -> list[str]:
        """The files and folders the entry names that the build reads; the first is the reader's ``source``."""
        return [str(spec[key]) for key, option in self.options.items() if option.path and key in spec]

    def prealigned(self, spec: Mapping[str, Any]) -> bool:
        """Whether the entry's images pass through as ArcFace crops (no detection, no other template)."""
        return bool(spec.get("aligned", self.aligned))
