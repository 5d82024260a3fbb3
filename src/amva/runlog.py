"""Logging and progress for workflow jobs: everything a job says goes to its log file."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


@contextmanager
def log_to(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send stderr (tqdm, warnings, tracebacks) and the ``amva`` logger to ``path``."""
    logger = logging.getLogger("amva")
    if path is None:
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        old, sys.stderr = sys.stderr, fh
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield logger
        except BaseException:
            logger.exception("job failed")
            raise
        finally:
            logger.removeHandler(handler)
            sys.stderr = old


def batches(items: Sequence[T], size: int, desc: str) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` with a progress bar counted in items."""
    if size < 1:
        raise ValueError(f"batch size {size}: must be >= 1")
    with tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr, mininterval=5) as bar:
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            yield chunk
            bar.update(len(chunk))
