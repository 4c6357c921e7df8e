"""CSV and JSON lines: what both engines share so that they read text files alike.

Text files carry no types. Both engines read them with one Arrow schema, the one the Arrow engine
finds: the contract's types for the columns it declares, the types lakeio's last write to the
dataset recorded for the others (:func:`lakeio.files.text_columns`), pyarrow's inference from the
files' first rows for the rest (data of other tools) (see ``ArrowEngine.text_schema``), in types both engines hold
(:func:`held_by_both`). A value that does not read as its column's type is an error naming the
file, the column and the value on both engines (:func:`bad_value_message`); the Arrow engine finds
them with :func:`find_bad_value`, the Spark engine as it converts each value.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from lakeio.errors import SchemaMismatchError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeio.config import Options
    from lakeio.frame import ScanPlan

T = TypeVar("T", "pa.Table", "pa.RecordBatch")

TEXT_FORMATS = ("csv", "json")
# The words of every bad-value message: the Spark engine knows its own errors by them.
DOES_NOT_READ_AS = "does not read as"
# Arrow's words for a value its CSV or JSON reader could not convert, or (JSON, checked after the
# read: pyarrow's JSON reader keeps such bytes) for text that is not UTF-8.
_CONVERSION_ERRORS = ("In CSV column #", "Failed to convert JSON", "changed from", "Failed to parse string",
                      "Invalid UTF8")


def json_lists(data: pa.Table, columns: Iterable[str]) -> pa.Table:
    """``data`` with its list-of-strings ``columns`` as JSON text (``["in_set [day]"]``, as Spark's
    ``to_json`` writes it), for a format with no list type (CSV); :func:`from_json_lists` reads
    them back."""
    import pyarrow as pa

    for column in columns:
        values = [None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                  for value in data[column].to_pylist()]
        data = data.set_column(data.schema.get_field_index(column), column, pa.array(values, pa.string()))
    return data


def from_json_lists(data: T, columns: Iterable[str]) -> T:
    """``data`` (a table or record batch) with those of ``columns`` it holds as JSON text
    (:func:`json_lists`) as lists of strings."""
    import pyarrow as pa

    for column in columns:
        index = data.schema.get_field_index(column)
        if index < 0 or not pa.types.is_string(data.schema.field(index).type):
            continue
        values = pa.array([None if value is None else json.loads(value) for value in data[column].to_pylist()],
                          pa.list_(pa.string()))
        data = data.set_column(index, column, values)
    return data


def json_lists_schema(schema: pa.Schema, columns: Iterable[str]) -> pa.Schema:
    """``schema`` as :func:`from_json_lists` leaves it."""
    import pyarrow as pa

    for column in columns:
        index = schema.get_field_index(column)
        if index >= 0 and pa.types.is_string(schema.field(index).type):
            schema = schema.set(index, schema.field(index).with_type(pa.list_(pa.string())))
    return schema


def held_by_both(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the types pyarrow infers from text that Spark cannot hold replaced: timestamps
    in microseconds (inference gives seconds; nothing is lost), times of day as strings."""
    import pyarrow as pa

    def held(data_type: pa.DataType) -> pa.DataType:
        if pa.types.is_timestamp(data_type) and data_type.unit != "us":
            return pa.timestamp("us", data_type.tz)
        if pa.types.is_time(data_type):
            return pa.string()
        return data_type

    return pa.schema([field.with_type(held(field.type)) for field in schema], metadata=schema.metadata)


def csv_options(options: Options, types: dict[str, pa.DataType],
                columns: Iterable[str] | None = None) -> dict[str, Any]:
    """pyarrow's CSV parse, read and convert options for a dataset's options: ``types`` for the
    columns named there, inference for the others; ``columns``: read only these."""
    import pyarrow.csv as pcsv

    return {
        "parse_options": pcsv.ParseOptions(delimiter=options.delimiter),
        "read_options": pcsv.ReadOptions(autogenerate_column_names=not options.header),
        "convert_options": pcsv.ConvertOptions(null_values=list(options.null_values), strings_can_be_null=True,
                                               column_types=types,
                                               include_columns=None if columns is None else list(columns)),
    }


def json_options(types: dict[str, pa.DataType], others: str = "infer"):
    """pyarrow's JSON parse options: ``types`` for the fields named there (read as
    :func:`json_read_types` says); ``others``: what other fields get (``"infer"``, or ``"ignore"``
    to read only those)."""
    import pyarrow as pa
    import pyarrow.json as pjson

    read = json_read_types(types)
    return pjson.ParseOptions(explicit_schema=pa.schema(read) if read else None, unexpected_field_behavior=others)


def json_read_types(types: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """The types pyarrow's JSON reader reads ``types`` as: dates as their text, which the scan then
    converts (:func:`json_dates`), since the reader takes a date column for numbers of days."""
    import pyarrow as pa

    return {name: pa.string() if pa.types.is_date(data_type) else data_type for name, data_type in types.items()}


def json_dates(types: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """The date columns of ``types``: read from JSON as text, converted to dates as they are scanned
    (a value that is no ``yyyy-mm-dd`` date fails the conversion, and is named)."""
    import pyarrow as pa

    return {name: data_type for name, data_type in types.items() if pa.types.is_date(data_type)}


def bad_value_message(plan: ScanPlan, file: Any, column: str, value: Any, data_type: pa.DataType) -> list:
    """The error message for a ``value`` of ``column`` in ``file`` that does not read as ``data_type``,
    in pieces: ``file`` and ``value`` are strings, or the Spark columns that give them row by row
    (the Spark engine raises it from inside its job)."""
    declared, recorded = dict(plan.target.column_types).get(column), dict(plan.target.recorded_types).get(column)
    what = f"{declared}, the type its contract declares" if declared \
        else f"{recorded}, the type lakeio wrote the column as" if recorded \
        else f"{data_type}, the type inferred from the first rows of the files"
    return [f"dataset {plan.dataset!r} [{plan.env}]: file ", file, f", column {column!r}: value '", value,
            f"' {DOES_NOT_READ_AS} {what}"]


def is_conversion_error(error: BaseException) -> bool:
    """True for pyarrow's error about a text value it could not convert to its column's type."""
    return any(words in str(error) for words in _CONVERSION_ERRORS)


def bad_value_error(plan: ScanPlan, error: BaseException, paths: Iterable[str], filesystem,
                    types: dict[str, pa.DataType]) -> SchemaMismatchError | None:
    """The error naming the file, column and value behind pyarrow's conversion ``error`` (which names
    at most two of them), or the file and line of bytes that are not UTF-8, found by reading the
    file again; None when no one value is at fault.

    Args:
        plan: the read.
        error: pyarrow's error.
        paths: the files that may hold the value, when pyarrow's message names none.
        filesystem: where they are.
        types: the columns' types, partition columns left out.
    """
    named = re.search(r"input source '([^']+)'", str(error))
    for path in [named.group(1)] if named else paths:
        not_utf8 = not_utf8_error(plan, path, filesystem)
        if not_utf8 is not None:
            return not_utf8
        with filesystem.open_input_stream(path) as stream:
            data = stream.read()
        found = find_bad_value(data, plan.format, plan.options, types)
        if found is not None:
            column, value = found
            return SchemaMismatchError("".join(bad_value_message(plan, path, column, value, types[column])))
    return None


def not_utf8_error(plan: ScanPlan, path: str, filesystem) -> SchemaMismatchError | None:
    """The error naming the file ``path``, the line and the first byte of it that is not UTF-8 text;
    None when it is all UTF-8. The file is read in blocks, so a file of any size takes little memory."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with filesystem.open_input_stream(path) as stream:
        while True:
            block = stream.read(1 << 22)
            held = decoder.getstate()[0]  # the start of a character cut by the last block: never a newline
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as bad:
                data = held + block
                line += data.count(b"\n", 0, bad.start)
                return SchemaMismatchError(f"dataset {plan.dataset!r} [{plan.env}]: file {path}, line {line}: "
                                           f"byte 0x{data[bad.start]:02x} is not UTF-8 text ({bad.reason}); "
                                           f"{plan.format} files must be UTF-8")
            if not block:
                return None
            line += block.count(b"\n")


def find_bad_value(data: bytes, format: str, options: Options,
                   types: dict[str, pa.DataType]) -> tuple[str, str] | None:
    """The column and text of the first value of a text file (``data``, one record per line) that
    does not read as its column's type in ``types``, or None when the file reads, or when no one
    value is at fault (a malformed line).

    Bisects the lines for the shortest start of the file that does not read, then reads the last
    line of it one column at a time.
    """
    import pyarrow as pa

    lines = data.splitlines(keepends=True)
    head = lines[:1] if format == "csv" and options.header else []
    body = lines[len(head):]

    def reads(part: list[bytes], columns: dict[str, pa.DataType], only: bool = False) -> bool:
        try:
            _read(b"".join(head + part), format, options, columns, only)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return False
        return True

    if reads(body, types):
        return None
    good, bad = 0, len(body)  # body[:good] reads, body[:bad] does not
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if reads(body[:middle], types) else (good, middle)
    line = body[bad - 1]
    for column, data_type in types.items():
        if not reads([line], {column: data_type}, only=True):
            return column, _text_of(head + [line], format, options, column)
    return None


def _read(data: bytes, format: str, options: Options, types: dict[str, pa.DataType], only: bool) -> pa.Table:
    """``data`` read as one CSV or JSON-lines file with ``types``; ``only``: those columns alone."""
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    if format == "csv":
        return pcsv.read_csv(io.BytesIO(data), **csv_options(options, types, list(types) if only else None))
    table = pjson.read_json(io.BytesIO(data), parse_options=json_options(types, "ignore" if only else "infer"))
    for name, data_type in json_dates(types).items():
        if name in table.column_names:
            table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(data_type))
    return table


def _text_of(lines: list[bytes], format: str, options: Options, column: str) -> str:
    """The value of ``column`` in a one-record file, as written: CSV text, or the JSON value (a
    string's contents, a number's digits)."""
    import pyarrow as pa

    if format == "csv":
        return _read(b"".join(lines), format, options, {column: pa.string()}, only=True).column(0)[0].as_py()
    value = json.loads(lines[-1]).get(column)
    return value if isinstance(value, str) else json.dumps(value)
