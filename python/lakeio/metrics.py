"""One structured record per read and write, through :mod:`logging`.

Records go to the ``lakeio.io`` logger at INFO: the message is the record as JSON, and the record
itself rides on the log record as ``record.lakeio`` for handlers that want fields. lakeio never
adds handlers or sets levels: the application decides where records go.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field, fields
from typing import Any

logger = logging.getLogger("lakeio.io")


@dataclass
class IORecord:
    """What one read or write did. Counts a step cannot know stay None."""

    operation: str  # "read" or "write"
    dataset: str
    env: str
    engine: str
    engine_reason: str
    format: str
    uri: str
    mode: str | None = None
    rows: int | None = None
    bytes: int | None = None
    files_scanned: int | None = None
    files_total: int | None = None
    files_written: int | None = None
    partitions_listed: int | None = None  # partition directories a pruned read lists
    partitions_total: int | None = None  # the table's partitions, when the read saw every one
    version: int | None = None  # the Delta table version read, or committed by the write
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    # Not part of the logged record: the validation report of the I/O (lakeio.validation), and what
    # runs when the I/O ends (the catalog's: the Delta version, the deferred metrics, lineage). The
    # latter is no field, so dataclasses.asdict() and copies of a record never reach the catalog.
    report: Any = field(default=None, repr=False, compare=False)
    on_complete: InitVar[Callable[[IORecord, BaseException | None], None] | None] = None

    def __post_init__(self, on_complete: Callable[[IORecord, BaseException | None], None] | None) -> None:
        self._on_complete = on_complete

    def complete(self, error: BaseException | None) -> None:
        """Runs what the record was given to run when its I/O ends (``error``: why it failed)."""
        if self._on_complete is not None:
            self._on_complete(self, error)

    @property
    def files_pruned(self) -> int | None:
        if self.files_total is None or self.files_scanned is None:
            return None
        return self.files_total - self.files_scanned

    def as_dict(self) -> dict:
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name != "report"}
        data["files_pruned"] = self.files_pruned
        return data


class Timer:
    """Context manager that stores the elapsed seconds on an :class:`IORecord`, runs its
    ``on_complete`` (also when the I/O failed) and emits it (when it succeeded)."""

    def __init__(self, record: IORecord):
        self.record = record

    def __enter__(self) -> IORecord:
        self._start = time.perf_counter()
        return self.record

    def __exit__(self, exc_type, exc, tb) -> None:
        self.record.seconds = round(time.perf_counter() - self._start, 4)
        try:
            self.record.complete(exc)
        finally:
            if exc_type is None:
                emit(self.record)


def emit(record: IORecord) -> None:
    data = record.as_dict()
    logger.info(json.dumps(data, default=str), extra={"lakeio": data})
