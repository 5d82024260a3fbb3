"""A ``fiqa:`` config entry as the library's arguments: the one module that knows an entry's layout.

An entry is ``{method, model, batch_size, <options of the method's record>}``. The workflow
checks every entry with :func:`check_entry` before any job runs, and its jobs turn the
entry into arguments with :func:`fiqa_options` or :func:`import_arguments`; the rest of
:mod:`amva.quality` takes plain arguments and knows no config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amva.quality import get_method

ENTRY_KEYS = frozenset({"method", "model", "batch_size"})
"""Keys of every entry that are not options of its method."""


def _options(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key not in ENTRY_KEYS}


def check_entry(name: str, spec: Mapping[str, Any]) -> None:
    """Refuse an entry whose method is unknown, lacks the FR model it needs, or gets options it does not take.

    The error names the entry (``config fiqa.<name>: ...``).
    """
    try:
        method = get_method(spec["method"])
        if method.needs_model and "model" not in spec:
            raise ValueError(f"method {method.name} needs an FR model (model: <a key of models>)")
        method.arguments(_options(spec))
    except ValueError as error:
        raise ValueError(f"config fiqa.{name}: {error}") from None


def fiqa_options(spec: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The options of a computed method; one that is seeded gets the top-level ``seed`` unless the entry sets one."""
    method = get_method(spec["method"])
    options = _options(spec)
    if "seed" in method.options:
        options.setdefault("seed", seed)
    return method.arguments(options)


def import_arguments(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`~amva.quality.scores_file.import_scores` but its ids, path and method.

    The input files (``path``) are left out: the workflow gives the job each one as an
    input, with ``{dataset}`` replaced.
    """
    method = get_method(spec["method"])
    options = method.arguments(_options(spec))
    for key in method.inputs:
        del options[key]
    options["fmt"] = options.pop("format")
    return options
