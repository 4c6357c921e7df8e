"""lakeio's errors: one root, one subclass per kind of failure.

Errors about an argument also inherit the matching builtin, so ``except ValueError`` and
``except KeyError`` keep working for callers who do not know lakeio.
"""

from __future__ import annotations


class LakeioError(Exception):
    """Root of every error lakeio raises on purpose."""


class ConfigError(LakeioError, ValueError):
    """A resource or settings file is wrong: the message names the file and the key."""


class InvalidArgumentError(LakeioError, ValueError):
    """An argument passed in code is wrong: a placeholder value, a filter, a write mode."""


class ResourceNotFoundError(LakeioError, KeyError):
    """A dataset name, or a dataset's environment, is not in the catalog."""

    def __str__(self) -> str:  # KeyError would print the repr of the message.
        return str(self.args[0]) if self.args else ""


class SchemaMismatchError(LakeioError, ValueError):
    """Data does not match the schema of the table it is written to."""


class StorageError(LakeioError):
    """The storage under a dataset failed or holds nothing where data was expected."""


class ConcurrentWriteError(StorageError):
    """Another writer committed a conflicting change to the same Delta table first (a merge or an
    overwrite that read what it changed): nothing of this write was committed; retry it."""


class EngineUnavailableError(LakeioError, RuntimeError):
    """The engine asked for cannot run here: no Java, a missing jar, a Spark Connect session."""


class DataQualityError(LakeioError):
    """Data broke its contract: ``report`` holds every check's outcome, not only the first failure."""

    def __init__(self, report):
        self.report = report
        super().__init__(f"dataset {report.dataset!r} [{report.env}] failed its contract on {report.operation} "
                         f"({len(report.errors)} error(s), {len(report.warnings)} warning(s); run {report.run_id}, "
                         f"contract {report.contract}):\n{report.describe_failures()}")


class ResultTooLargeError(LakeioError, MemoryError):
    """A result asked for in memory would not fit: stream it (``.to_batches()``) or write it."""


def storage_error(message: str, error: Exception) -> Exception:
    """``error`` if it is lakeio's already, else a :class:`StorageError` saying ``message`` and what failed."""
    if isinstance(error, LakeioError):
        return error
    return StorageError(f"{message}: {type(error).__name__}: {error}")
