"""Partition pruning for Spark reads of hive-partitioned Parquet tables.

A path-based Spark read (``spark.read.parquet(root).where(...)``) lists every partition directory
before it filters. For every Spark read of a partitioned Parquet dataset, lakeio asks its JVM helper
(``lakeio.helper.Helper.selectPartitions``) for the directories the filter can need and their files,
and Spark reads only those, with ``basePath`` set to the table root so the partition columns stay,
listing nothing again (``Helper.prelistedFrame``); a hand-off to Arrow reads the same files. The
whole filter still runs afterwards: pruning only decides which directories are read, and a condition
the helper cannot evaluate keeps a directory rather than dropping it.

Where the contract declares no partition column type, the helper infers them from the
directory names it sees (a sample of each level, everything it lists), as Spark's partition
discovery does; where Spark's inference from only the partitions read would differ (a read of
nothing but null partitions, numbers in a string column), lakeio passes the helper's types to
Spark so a pruned read has the table's schema. A declared type wins (:func:`with_declared_types`),
and folder values are read as :mod:`lakeio.partitions` reads them (pyarrow's ``%C3%BC`` is ``ü``).
Delta tables are never listed: Spark's Delta reader prunes from the transaction log.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from lakeio.errors import LakeioError, SchemaMismatchError, StorageError
from lakeio.predicate import And, Compare, In, IsNull, Literal, Not, Predicate, conjuncts_where, passing_rows
from lakeio.spark import jvm

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from lakeio.requests import ScanPlan


TUNING = ("threads", "sampleSize", "maxCandidates")
# The partition column types whose values the helper compares with a filter's literals (it prunes on them).
HELPER_COMPARES = ("int", "bigint", "date", "string")


class HelperDoor(Protocol):
    """How the helper is reached: :mod:`lakeio.spark.jvm` (py4j, a classic session) or
    :mod:`lakeio.spark.connect` (its Spark Connect plugin); the same entry points, the same JSON."""

    def call(self, spark: SparkSession, entry_point: str, payload: dict | None = None) -> dict:
        """An entry point's JSON answer."""
        ...

    def frame(self, spark: SparkSession, entry_point: str, payload: dict) -> DataFrame:
        """An entry point's answer that is a Dataset, as a DataFrame."""
        ...


@dataclass(frozen=True)
class PartitionSelection:
    """The partition directories of one read, as the helper found them.

    Attributes:
        paths: the partition directories to read (Hadoop paths under the table root).
        types: each partition column's Spark type name (``int``, ``bigint``, ``date``, ``string``;
            a declared one: also ``boolean``, ``double``, ``decimal(p,s)``, ``timestamp``), or None
            where Spark's own inference stands.
        total: the table's number of partitions, when finding ``paths`` saw them all.
        schema_path: when ``paths`` is empty, one partition to take the table's schema from.
        data_schema: the data files' Spark schema (JSON) from one footer, read the way Spark's
            schema inference reads it; None when schemas are merged or there is no file to read.
        requests: the file system listings and probes the helper made.
        steps: how each partition level was found.
        partitions: when files were asked for, each selected partition as the helper answers it:
            ``{"path", "values": {column: typed value or None}, "files": [{"path", "size", "modified"}]}``.
    """

    paths: tuple[str, ...]
    types: dict[str, str | None]
    total: int | None
    schema_path: str | None
    data_schema: str | None
    requests: int
    steps: tuple[str, ...]
    partitions: tuple[dict, ...] = ()

    @property
    def listed(self) -> bool:
        """True when the selection is ready to read without listing again: its files are listed,
        every partition column's type is known and the data files' schema is read."""
        return (len(self.partitions) == len(self.paths) and self.data_schema is not None
                and all(self.types.values()))


def applies(plan: ScanPlan) -> bool:
    """True when a Spark read of ``plan`` goes through the helper: every read of a partitioned Parquet
    table, filtered on its partition columns (pruned) or not (the helper then lists the whole table
    in one recursive listing off the local disk, and Spark lists nothing again)."""
    return plan.format == "parquet" and bool(plan.partition_by)


def select_partitions(spark: SparkSession, plan: ScanPlan, *, prune: bool = True,
                      files: bool = False, door: HelperDoor = jvm) -> PartitionSelection:
    """Asks the helper which partition directories ``plan`` needs.

    Args:
        spark: the session whose JVM and Hadoop configuration the helper uses.
        plan: a read of a partitioned table.
        prune: False selects every partition (what ``explain()`` counts as the total).
        files: also list each selected partition's data files (for a read; ``explain()`` needs none).
        door: how the helper is reached.

    Raises:
        StorageError: the table root does not exist, its layout does not match ``partition_by``,
            or the storage failed; the message names the dataset and the path.
    """
    partition_columns = set(plan.partition_by)
    request: dict[str, Any] = {
        "root": plan.location.spark_path,
        "columns": list(plan.partition_by),
        "predicate": helper_predicate(plan.predicate, partition_columns) if prune and plan.predicate else None,
        # Merged schemas need every footer: Spark's inference does that.
        "dataSchema": (spark.conf.get("spark.sql.parquet.mergeSchema", "false") or "").lower() != "true",
        "files": files,
    }
    for option in TUNING:
        value = spark.conf.get(f"spark.lakeio.pruning.{option}", None)
        if value is not None:
            request[option] = int(value)
    answer = door.call(spark, "selectPartitions", request)
    if "error" in answer:
        what = f"dataset {plan.dataset!r} [{plan.env}] at {plan.location.uri}"
        if answer["error"] == "request":
            raise LakeioError(f"{what}: lakeio's helper refused the partition request (a lakeio bug): {answer['message']}")
        if answer["error"] == "layout":
            raise StorageError(f"{what}: partition layout does not match partition_by "
                               f"[{', '.join(plan.partition_by)}]: {answer['message']}")
        raise StorageError(f"{what}: {answer['message']}")
    return with_declared_types(PartitionSelection(
        paths=tuple(answer["paths"]), types=answer["types"], total=answer["total"], schema_path=answer["schemaPath"],
        data_schema=answer["dataSchema"], requests=answer["requests"], steps=tuple(answer["steps"]),
        partitions=tuple(answer.get("partitions", ()))), plan, prune)


def with_declared_types(selection: PartitionSelection, plan: ScanPlan, prune: bool = True) -> PartitionSelection:
    """``selection`` with the contract's declared partition types in place of those the helper
    inferred, each partition's values read again from its folder names as that type
    (:mod:`lakeio.partitions`), as the Arrow engine reads them. The helper compares only int,
    bigint, date and string values, so with ``prune`` the partitions of the filter's top-level AND
    terms on other declared columns (a timestamp, decimal, double or boolean) are pruned here."""
    import pyarrow as pa

    from lakeio import partitions
    from lakeio.files import declared_types

    arrow = {c: t for c, t in declared_types(plan.partition_types).items() if spark_type_name(t)}
    if not arrow:
        return selection

    def folder_values(path: str) -> dict[str, pa.Scalar]:
        names = path.rstrip("/").split("/")[-len(plan.partition_by):]
        found = dict(pair for pair in map(partitions.parse_folder, names) if pair is not None)
        try:
            return {c: partitions.typed_value(found.get(c), t) for c, t in arrow.items()}
        except pa.ArrowInvalid as error:
            raise SchemaMismatchError(f"dataset {plan.dataset!r} [{plan.env}] at {plan.location.uri}: partition "
                                      f"folder {path!r} is not of its column's declared type "
                                      f"({', '.join(f'{c}: {t}' for c, t in arrow.items())}): {error}") from error

    values = {path: folder_values(path) for path in selection.paths}
    compared = {c for c, t in arrow.items() if spark_type_name(t) not in HELPER_COMPARES}
    terms = conjuncts_where(plan.predicate, lambda column, _: column in compared) if prune else None
    paths = list(selection.paths)
    if terms is not None and paths:
        rows = passing_rows({c: pa.array([values[p][c].as_py() for p in paths], arrow[c]) for c in compared}, terms)
        paths = [paths[row] for row in rows]
    retyped = tuple({**p, "values": {**p["values"], **{c: _json_value(v) for c, v in values[p["path"]].items()}}}
                    for p in selection.partitions if p["path"] in paths)
    return replace(selection, paths=tuple(paths), partitions=retyped,
                   types={**selection.types, **{c: spark_type_name(t) for c, t in arrow.items()}})


def _json_value(scalar: pa.Scalar) -> Any:
    """A typed partition value as the helper's ``prelistedFrame`` reads it (see Helper.scala)."""
    import pyarrow as pa

    from lakeio import partitions

    value = scalar.as_py()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if pa.types.is_timestamp(scalar.type):  # microseconds since the epoch
        return scalar.cast(pa.int64()).as_py()
    if isinstance(value, float):
        return partitions.spark_text(value)  # Java's text of it, which Double.parseDouble reads back
    if isinstance(value, dt.date):
        return value.isoformat()
    return format(value, "f")  # a decimal, exact


def arrow_value(value: Any, type_: pa.DataType) -> pa.Scalar:
    """A partition's value as the helper answers it (:func:`_json_value`'s form), as a scalar of ``type_``."""
    import decimal

    import pyarrow as pa

    if value is not None and type_ == pa.date32():
        value = dt.date.fromisoformat(value)
    elif value is not None and pa.types.is_decimal(type_):
        value = decimal.Decimal(value)
    elif value is not None and pa.types.is_floating(type_):
        value = float(value)  # Java's text: 1.0E10, NaN, Infinity
    return pa.scalar(value, type_)


def read(spark: SparkSession, plan: ScanPlan, selection: PartitionSelection, door: HelperDoor = jvm) -> DataFrame:
    """Reads the selected partitions (unfiltered) with the table root as ``basePath``.

    A :attr:`~PartitionSelection.listed` selection becomes Spark's file index as it is: Spark lists,
    probes and infers nothing again. Otherwise, with the data files' schema known, the read gets it
    plus the partition columns' known types up front, which spares Spark its schema inference job;
    without it Spark infers, and if its partition types from the partitions read differ from the
    helper's, the read is redone with the helper's.

    Raises:
        StorageError: the table has no partition at all, so there is no schema to read.
    """
    paths = list(selection.paths) or ([selection.schema_path] if selection.schema_path else [])
    if not paths:
        raise StorageError(f"dataset {plan.dataset!r} [{plan.env}] at {plan.location.uri}: the table has no "
                           f"partitions, so there is no schema to read")
    if selection.listed:
        schema = table_schema(selection, plan.partition_by).jsonValue()
        request = {"root": plan.location.spark_path, "schema": schema, "partitionColumns": list(plan.partition_by),
                   "partitions": list(selection.partitions)}
        return door.frame(spark, "prelistedFrame", request)
    refuse_misread_folders(plan, paths)  # Spark reads these folders' names itself
    reader = spark.read.format(plan.format).option("basePath", plan.location.spark_path)
    if selection.data_schema is not None:
        return reader.schema(table_schema(selection, plan.partition_by)).load(paths)
    frame = reader.load(paths)
    typed = _with_partition_types(frame.schema, selection.types)
    return frame if typed is None else reader.schema(typed).load(paths)


def refuse_misread_folders(plan: ScanPlan, paths: Iterable[str]) -> None:
    """Refuses a read whose partition folders Spark's own listing would read other than lakeio
    (``city=Z%C3%BCrich``, as pyarrow and older lakeio spelt non-ASCII: Spark reads ``ZÃ¼rich``).

    Raises:
        StorageError: naming the first such folder, and what reads or rewrites the dataset.
    """
    from lakeio import partitions

    for path in paths:
        misread = partitions.spark_misread(path)
        if misread is not None:
            folder, theirs, ours = misread
            raise StorageError(
                f"{plan.describe()}: partition folder {folder!r} (in {path}) is spelt as pyarrow spells non-ASCII; "
                f"Spark's own listing would read its value as {theirs!r}, not {ours!r}, so this Spark read is "
                f"refused. Read it with engine='arrow', or rewrite the dataset once in Spark's spelling: "
                f"lake.write({plan.dataset!r}, lake.read({plan.dataset!r}, engine='arrow').to_arrow(), "
                f"mode='overwrite', engine='arrow')")


def helper_predicate(predicate: Predicate, partition_columns: set[str]) -> dict:
    """``predicate`` in the helper's JSON grammar; conditions on other columns become opaque."""
    if isinstance(predicate, (Compare, In, IsNull)) and predicate.column not in partition_columns:
        return {"opaque": predicate.column}
    if isinstance(predicate, Compare):
        return {"column": predicate.column, "op": predicate.op, "value": _helper_literal(predicate.value)}
    if isinstance(predicate, In):
        return {"column": predicate.column, "in": [_helper_literal(v) for v in predicate.values]}
    if isinstance(predicate, IsNull):
        return {"column": predicate.column, "isNull": True}
    if isinstance(predicate, Not):
        return {"not": helper_predicate(predicate.operand, partition_columns)}
    key = "and" if isinstance(predicate, And) else "or"
    return {key: [helper_predicate(p, partition_columns) for p in predicate.operands]}


def _helper_literal(value: Literal) -> dict:
    # bool before int and datetime before date: each is a subclass of the other.
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)} if math.isfinite(value) else {"nonfinite": repr(value)}
    if isinstance(value, dt.datetime):
        return {"timestamp": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    return {"string": str(value)}


def table_schema(selection: PartitionSelection, partition_by: tuple[str, ...]) -> StructType:
    """The data schema plus every partition column whose type the helper knows (Spark infers the rest)."""
    from pyspark.sql.types import StructField, StructType

    if selection.data_schema is None:
        raise LakeioError("lakeio bug: table_schema() needs the selection's data schema")
    data = StructType.fromJson(json.loads(selection.data_schema))
    known = {c: t for c, t in selection.types.items() if t}
    fields = [f for f in data.fields if f.name not in partition_by]
    fields += [StructField(c, _spark_type(known[c]), True) for c in partition_by if c in known]
    return StructType(fields)


def _with_partition_types(schema: StructType, types: dict[str, str | None]) -> StructType | None:
    """``schema`` with the helper's partition types where Spark inferred others, else None."""
    from pyspark.sql.types import StructField, StructType

    known = {c: t for c, t in types.items() if t}
    fields = [
        StructField(f.name, _spark_type(known[f.name]), f.nullable, f.metadata)
        if f.name in known and f.dataType.simpleString() != known[f.name] else f
        for f in schema.fields
    ]
    return StructType(fields) if fields != schema.fields else None


def spark_type_name(type_: pa.DataType) -> str | None:
    """The Spark type name (``int``, ``decimal(10,2)``, ``timestamp``) of an Arrow partition column
    type, or None where Spark's inference stands (a type no partition column is given)."""
    import pyarrow as pa

    if pa.types.is_decimal128(type_):
        return f"decimal({type_.precision},{type_.scale})"
    if pa.types.is_timestamp(type_) and type_.unit == "us":
        return "timestamp" if type_.tz == "UTC" else "timestamp_ntz" if type_.tz is None else None
    return {pa.int32(): "int", pa.int64(): "bigint", pa.date32(): "date", pa.string(): "string",
            pa.bool_(): "boolean", pa.float64(): "double"}.get(type_)


def _spark_type(name: str):
    """The pyspark type of a :func:`spark_type_name`."""
    import re

    from pyspark.sql import types as T

    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", name)
    if decimal:
        return T.DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    return {"int": T.IntegerType, "bigint": T.LongType, "date": T.DateType, "string": T.StringType,
            "boolean": T.BooleanType, "double": T.DoubleType, "timestamp": T.TimestampType,
            "timestamp_ntz": T.TimestampNTZType}[name]()
