"""The one place Spark's, Delta's and py4j's errors become lakeio's."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from lakeio.engines import text
from lakeio.errors import ConcurrentWriteError, InvalidArgumentError, SchemaMismatchError, StorageError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from lakeio.requests import ScanPlan

# How Spark reports a value of a text file that is not of its column's type: lakeio's own message
# (raised from the job by _read_text's conversions), between Spark's error class and SQL state; or
# Spark's JSON parser's words for the field and value, with the file in the enclosing read error.
# Spark 4 names the error class; Spark 3.5 shows the RuntimeException raise_error throws.
_RAISED_BAD_VALUE = re.compile(r"(?:\[USER_RAISED_EXCEPTION\] |java\.lang\.RuntimeException: )(.*"
                               + text.DOES_NOT_READ_AS + r".*?)(?: SQLSTATE|$)", re.MULTILINE)
_JSON_BAD_VALUE = re.compile(r"Cannot parse the field name '(.*?)' and the value (.*?) of the JSON token type")
_FAILED_FILE = re.compile(r"Encountered error while reading file (\S+?)\.?\s")
_DELTA_VERSIONS = re.compile(r"to version (\d+)\. Available versions: \[(\d+), (\d+)\]")
# Delta's error classes for a commit that lost to a concurrent one it conflicts with.
_DELTA_CONFLICT = re.compile(r"DELTA_(CONCURRENT_[A-Z_]+|METADATA_CHANGED|PROTOCOL_CHANGED)")
SPARK_PATH = r"^(file:(//)?|s3a://)"  # Spark's path of a file -> pyarrow's


@contextlib.contextmanager
def translated(what: str, exists=None, read: tuple[ScanPlan, pa.Schema | None] | None = None,
               read_on_arrow: Callable[[], object] | None = None):
    """Turns Spark's and Delta's errors into lakeio's, once, at this boundary.

    ``exists`` makes the error for a write that found data where mode='error' wanted none.
    ``read``: the plan and text schema of a read, whose bad values become the Arrow engine's error.
    ``read_on_arrow``: reads the plan on the Arrow engine, whose error names the file of a bad value
    where Spark's does not (Spark 3.5's JSON parser names the field and value, not the file).
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JJavaError) as error:
        if read is not None:
            _raise_bad_value(error, *read, read_on_arrow)
        conflict = _DELTA_CONFLICT.search(str(error))
        if conflict:
            raise ConcurrentWriteError(f"{what}: another writer committed a conflicting change first "
                                       f"({conflict.group(0)}); nothing was committed: retry the write") from error
        if isinstance(error, Py4JJavaError):  # a Java error pyspark has no class for (a failed task)
            first = str(error.java_exception).splitlines()[0]
            raise StorageError(f"{what}: Spark failed: {first}") from error
        # The error's class: getCondition on Spark 4, getErrorClass on 3.5.
        condition_of = getattr(error, "getCondition", None) or getattr(error, "getErrorClass", None)
        condition = (condition_of() or "") if condition_of is not None else ""
        said = f"{condition} {error}"
        if "PATH_NOT_FOUND" in said or "DELTA_MISSING_DELTA_TABLE" in said or "is not a Delta table" in said:
            raise StorageError(f"{what}: no data there ({condition or type(error).__name__})") from error
        if exists is not None and ("ALREADY_EXISTS" in said or "PATH_EXISTS" in said or "already exists" in said):
            raise exists() from error
        # Delta 3.x (the 3.5 line) reports a write's schema mismatch under a legacy error class.
        if ("SCHEMA" in condition or "MERGE_FIELDS" in condition or "METADATA_MISMATCH" in condition
                or condition == "_LEGACY_ERROR_TEMP_DELTA_0007"):
            raise SchemaMismatchError(f"{what}: {error}") from error
        versions = _DELTA_VERSIONS.search(said) if condition == "DELTA_VERSION_NOT_FOUND" else None
        if versions:  # the Arrow engine's words: one answer for a version the table does not have
            wanted, low, high = versions.groups()
            raise InvalidArgumentError(f"{what} has versions {low} to {high}; there is no version {wanted}") from error
        if condition == "DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION":
            raise InvalidArgumentError(f"{what}: the timestamp is before the first commit "
                                       f"({str(error).split('] ', 1)[-1]})") from error
        if "UNRESOLVED_COLUMN" in condition:
            raise InvalidArgumentError(f"{what}: {error}") from error
        raise StorageError(f"{what}: Spark failed: {condition or type(error).__name__}: {error}") from error


def _raise_bad_value(error: Exception, plan: ScanPlan, schema: pa.Schema | None,
                     read_on_arrow: Callable[[], object] | None = None) -> None:
    """Raises the error for a value of a text file not of its column's type, if ``error`` (Spark's,
    with its causes) is about one; returns otherwise."""
    message = str(error)  # with the Java stack trace and its causes
    raised = _RAISED_BAD_VALUE.search(message)
    if raised:
        raise SchemaMismatchError(raised.group(1)) from error
    parsed, failed = _JSON_BAD_VALUE.search(message), _FAILED_FILE.search(message)
    if parsed and failed and schema is not None and parsed.group(1) in schema.names:
        column, value = parsed.groups()
        file = re.sub(SPARK_PATH, "", failed.group(1))
        raise SchemaMismatchError("".join(text.bad_value_message(plan, file, column, value,
                                                                 schema.field(column).type))) from error
    if parsed and read_on_arrow is not None:  # a bad value in a file Spark does not name
        try:
            read_on_arrow()
        except SchemaMismatchError as named:
            raise named from error

