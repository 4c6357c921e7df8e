"""Hive partition folders (``day=2024-01-02/city=Z%C3%BCrich``): how lakeio names, types and reads
them, on every engine, by Spark's rules (what a Spark reader of the same folders sees).

- **Names.** A value's folder is Spark's text of the value (``CAST(value AS STRING)`` in UTC:
  ``2024-01-02``, ``2024-01-02 10:00:00``, ``1.5``, ``1.0E10``), escaped as Spark escapes it
  (:func:`escape`: ``%XX`` for control characters and ``"#%'*/:=?[\\]^{`` and DEL; spaces and
  non-ASCII stay as they are). A null or empty string is the null partition
  ``__HIVE_DEFAULT_PARTITION__``, as Spark writes both.
- **Reads** unescape ``%XX`` (:func:`unescape`); a run of escapes that spells UTF-8 (as pyarrow
  and older lakeio wrote non-ASCII) reads as that text, so both spellings of a folder read alike.
- **Types** are inferred from the unescaped values as Spark's partition discovery infers them
  (:func:`infer`): int, then bigint, then decimal (no fraction, up to 38 digits), then double,
  then timestamp (``yyyy-MM-dd HH:mm:ss[.S]``: at most one digit of a fraction, so the
  microseconds Spark itself writes read back as a string), then date (``yyyy-MM-dd``), else string; the kinds
  of a column's folders are widened as Spark widens them (:func:`wider`), a mix with no common type
  is a string column, and a column of nothing but null partitions is of the null type. A
  contract's declared type wins over inference.

>>> folder_name("k", "é t'/x")
'k=é t%27%2Fx'
>>> unescape("%C3%A9 t%27%2Fx"), unescape("é t%27%2Fx")
("é t'/x", "é t'/x")
>>> [str(infer([v])) for v in ("007", "9999999999", "1e5", "1.5", "2024-01-02", "2024-01-02 10:00:00", "a")]
['int32', 'int64', 'decimal128(6, 0)', 'double', 'date32[day]', 'timestamp[us, tz=UTC]', 'string']
>>> str(infer(["7", "2024-01-02"])), str(infer([None]))
('string', 'null')
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# The folder value of a null (or empty) partition value, as Spark and Hive write it.
NULL_NAME = "__HIVE_DEFAULT_PARTITION__"

# The characters Spark's ExternalCatalogUtils.escapePathName escapes (checked against Spark 4.1's).
_ESCAPED = frozenset(chr(c) for c in range(1, 32)) | frozenset('"#%\'*/:=?[\\]^{\x7f')
#: A Java (and Python) regex of one character that :func:`escape` escapes, for Spark-side checks.
ESCAPED_PATTERN = "[" + "".join(f"\\x{ord(c):02x}" for c in sorted(_ESCAPED)) + "]"

# Spark's kinds of partition value, in its order of inference; a decimal is ("decimal", precision).
Kind = str | tuple[str, int]
_INT32, _INT64 = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
_INTEGRAL = re.compile(r"[+-]?[0-9]+")
_BIG_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JAVA_DOUBLE = re.compile(r"[+-]?(?:NaN|Infinity|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?))")
_JAVA_HEX_DOUBLE = re.compile(r"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Spark 3.5 and 4.1 parse partition timestamps as `yyyy-MM-dd HH:mm:ss[.S]`: one digit of a fraction at most
_TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]))?")
_MAX_DECIMAL_DIGITS = 38
_JAVA_TRIMMED = "".join(chr(c) for c in range(33))  # what Java's String.trim() drops


def escape(text: str) -> str:
    """``text`` as Spark writes it in a folder name: ``%XX`` for the characters it escapes."""
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)


def unescape(text: str) -> str:
    """The value a folder name spells: ``%XX`` decoded, runs that are UTF-8 as text (pyarrow's
    spelling), any other escape as one character per byte (Spark's reading)."""
    if "%" not in text:
        return text

    def decoded(run: re.Match) -> str:
        raw = urllib.parse.unquote_to_bytes(run.group())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    return re.sub(r"(?:%[0-9A-Fa-f]{2})+", decoded, text)


def spark_misread(path: str) -> tuple[str, str, str] | None:
    """The first folder of ``path`` whose value Spark's own reading (each ``%XX`` one character)
    gives other than :func:`unescape` does (a UTF-8 run: pyarrow's spelling of non-ASCII), as
    (folder, Spark's value, lakeio's value); None when Spark reads every folder alike.

    >>> spark_misread("/t/day=2024-01-02/city=Z%C3%BCrich/part-0.parquet")
    ('city=Z%C3%BCrich', 'ZÃ¼rich', 'Zürich')
    >>> spark_misread("/t/city=Zürich/k=a%2Fb/part-0.parquet") is None
    True
    """
    for segment in path.split("/"):
        if "=" in segment and "%" in segment:
            spark = re.sub(r"%([0-9A-Fa-f]{2})", lambda escape: chr(int(escape.group(1), 16)), segment)
            if spark != unescape(segment):
                return segment, spark.partition("=")[2], unescape(segment.partition("=")[2])
    return None


def folder_value(value: Any) -> str:
    """The (escaped) folder value of one partition value: Spark's text of it."""
    return NULL_NAME if value is None or value == "" else escape(spark_text(value))


def folder_name(column: str, value: Any) -> str:
    """``column=value`` as Spark names the folder of that partition value."""
    return f"{escape(column)}={folder_value(value)}"


def folder_path(key: Mapping[str, Any]) -> str:
    """The nested folders (``year=2013/month=1``) of one partition's values, in the key's order."""
    return "/".join(folder_name(column, value) for column, value in key.items())


def respelt(folder: str) -> str:
    """A partition folder path (``k=%C3%A9/n=1``) as :func:`folder_path` names its values (``k=é/n=1``)."""
    parsed = [parse_folder(part) for part in folder.split("/")]
    return "/".join(folder_name(*pair) if pair else part for pair, part in zip(parsed, folder.split("/"), strict=True))


def spark_text(value: Any) -> str:
    """``CAST(value AS STRING)`` as Spark renders it with the session time zone UTC (lakeio's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _java_double_text(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
        return value.strftime("%Y-%m-%d %H:%M:%S") + fraction
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _java_double_text(value: float) -> str:
    """Java's ``Double.toString``: plain notation from 10^-3 to 10^7, else ``1.0E10``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        if "e" in text:  # repr's exponent inside the plain range (e.g. 1e-3 stays 0.001)
            text = format(decimal.Decimal(text), "f")
        return text if "." in text else text + ".0"
    digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()[1:]
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    power = exponent + len(mantissa) - 1
    sign = "-" if value < 0 else ""
    return f"{sign}{mantissa[0]}.{mantissa[1:] or '0'}E{power}"


# -- reading ----------------------------------------------------------------------------------


def parse_folder(segment: str) -> tuple[str, str | None] | None:
    """A folder name's (column, unescaped value; None for the null partition), or None when it is
    no ``column=value``."""
    column, equals, value = segment.partition("=")
    if not equals or not column:
        return None
    return unescape(column), None if value == NULL_NAME else unescape(value)


@functools.lru_cache(maxsize=1 << 16)  # a table's folders repeat their values level after level
def kind_of(value: str) -> tuple[Kind, Any]:
    """The kind Spark infers for one (unescaped) partition value, and the value of that kind."""
    if _INTEGRAL.fullmatch(value):
        number = int(value)
        if _INT32[0] <= number <= _INT32[1]:
            return "int", number
        if _INT64[0] <= number <= _INT64[1]:
            return "bigint", number
    if _BIG_DECIMAL.fullmatch(value) and _scale(value) <= 0 and -_scale(value) <= _MAX_DECIMAL_DIGITS:
        exact = int(decimal.Decimal(value))
        digits = len(str(abs(exact)))
        if digits <= _MAX_DECIMAL_DIGITS:
            return ("decimal", digits), decimal.Decimal(exact)
    double = _java_double(value)
    if double is not None:
        return "double", double
    stamp = _TIMESTAMP.fullmatch(value)
    if stamp:
        with _invalid_is_none() as parsed:
            day, hour, minute, second, fraction = stamp.groups()
            parsed.append(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(
                int(hour), int(minute), int(second), int((fraction or "0").ljust(6, "0"))), dt.UTC))
        if parsed:
            return "timestamp", parsed[0]
    if _DATE.fullmatch(value):
        with _invalid_is_none() as parsed:
            parsed.append(dt.date.fromisoformat(value))
        if parsed:
            return "date", parsed[0]
    return "string", value


def pyarrow_reads_alike(spelt: str, type_: pa.DataType) -> bool:
    """True when pyarrow's hive partitioning (URI-decoding, then its own cast) reads a folder value
    so spelt as this rule does: the null partition, plain integers and dates, and text whose escapes
    are UTF-8; other values (``+5``, ``1e5``, ``1.5d``, timestamps, Spark's escapes of bytes that
    are no UTF-8) are read by the rule itself."""
    import pyarrow as pa

    if spelt == NULL_NAME:
        return True
    if pa.types.is_string(type_):
        if "%" not in spelt:
            return True
        if not re.fullmatch(r"(?:[^%]|%[0-9A-Fa-f]{2})*", spelt):
            return False
        try:
            urllib.parse.unquote_to_bytes(spelt).decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    if type_ in (pa.int32(), pa.int64()):
        return re.fullmatch(r"-?[0-9]+", spelt) is not None
    return type_ == pa.date32()  # inferred from yyyy-MM-dd folders only


def _scale(text: str) -> int:
    """The scale Java's BigDecimal gives this number's text (digits after the point, less the exponent)."""
    mantissa, _, exponent = text.lower().partition("e")
    fraction = mantissa.partition(".")[2]
    return len(fraction) - int(exponent or 0)


def _java_double(text: str) -> float | None:
    """``Double.parseDouble(text)``, or None where Java refuses it (it trims control characters and spaces)."""
    text = text.strip(_JAVA_TRIMMED)
    if _JAVA_DOUBLE.fullmatch(text):
        return float(text.rstrip("fFdD") if not text.endswith("Infinity") else text)
    hexadecimal = _JAVA_HEX_DOUBLE.fullmatch(text)
    if hexadecimal:
        return float.fromhex(hexadecimal.group(1) + "0x" + hexadecimal.group(2))
    return None


class _invalid_is_none:
    """A block whose ValueError (an impossible date or time) leaves its list empty."""

    def __enter__(self) -> list:
        self.found: list = []
        return self.found

    def __exit__(self, kind, error, trace) -> bool:
        return kind is not None and issubclass(kind, ValueError)


def wider(a: Kind | None, b: Kind | None) -> Kind | None:
    """The kind of a column holding values of kinds ``a`` and ``b`` (None: only nulls so far), as
    Spark widens partition columns: no precision is lost, so bigint or decimal with double is string."""
    if a is None or b is None:
        return b if a is None else a
    if a == b:
        return a
    pair = {a, b}
    if pair == {"int", "bigint"}:
        return "bigint"
    if pair == {"int", "double"}:
        return "double"
    if pair == {"date", "timestamp"}:
        return "timestamp"
    integral = {"int": 10, "bigint": 20}
    if isinstance(a, tuple) and isinstance(b, tuple):
        return "decimal", max(a[1], b[1])
    for one, other in ((a, b), (b, a)):
        if isinstance(one, tuple) and isinstance(other, str) and other in integral:
            return "decimal", max(one[1], integral[other])
    return "string"


def infer(values: Iterable[str | None]) -> pa.DataType:
    """The Arrow type of a partition column whose folders hold these unescaped values (None: the
    null partition), as Spark infers it."""
    kinds = (kind_of(value)[0] for value in values if value is not None)
    return arrow_type(functools.reduce(wider, kinds, None))


def arrow_type(kind: Kind | None) -> pa.DataType:
    """The Arrow type lakeio gives a Spark partition kind (Spark's timestamps are UTC instants)."""
    import pyarrow as pa

    if isinstance(kind, tuple):
        return pa.decimal128(kind[1], 0)
    return {None: pa.null(), "int": pa.int32(), "bigint": pa.int64(), "double": pa.float64(),
            "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"), "string": pa.string()}[kind]


def typed_value(value: str | None, type_: pa.DataType) -> pa.Scalar:
    """One unescaped partition value as a scalar of the column's type (None stays None): the value
    of its inferred kind, cast to a wider or declared type; a value of no kind of its own (a
    string) is its text cast. Raises pyarrow's ArrowInvalid when the value is not of the type."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if value is None or pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return pa.scalar(value, type_)
    kind, parsed = kind_of(value)
    if kind == "string":
        return pc.cast(pa.scalar(value), type_)
    own = arrow_type(kind)
    return pa.scalar(parsed, own) if own == type_ else pc.cast(pa.scalar(parsed, own), type_)


def partition_key(folder: str, schema: pa.Schema) -> tuple | None:
    """A partition folder path's values typed as ``schema`` types its columns, so folders that
    name one value in two spellings (``code=007``, ``code=7`` as integers; ``k=%C3%A9``, ``k=é``)
    have one key; None when a segment is no ``column=value`` of the schema or not of its type.

    >>> import pyarrow as pa
    >>> schema = pa.schema([("code", pa.int32()), ("k", pa.string())])
    >>> partition_key("code=007/k=%C3%A9", schema) == partition_key("code=7/k=é", schema)
    True
    >>> partition_key("code=x/k=a", schema) is None
    True
    """
    import pyarrow as pa

    key = []
    for segment in folder.split("/") if folder else ():
        pair = parse_folder(segment)
        if pair is None or pair[0] not in schema.names:
            return None
        try:
            key.append((pair[0], typed_value(pair[1], schema.field(pair[0]).type).as_py()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OverflowError):
            return None
    return tuple(key)


def typed_texts(texts: pa.Array, type_: pa.DataType | None = None) -> pa.Array:
    """A column's unescaped folder values (``texts``: strings, null for the null partition) typed
    as :func:`typed_value` types each, as ``type_``, else as :func:`infer` infers the column from
    all of them. Where every value is a plain integer or date (a listing's folders usually are),
    in one cast of the whole column; else value by value. Raises pyarrow's ArrowInvalid when a
    value is not of ``type_``.

    >>> import pyarrow as pa
    >>> typed_texts(pa.array(["2024-01-02", None])).to_pylist()
    [datetime.date(2024, 1, 2), None]
    >>> [str(typed_texts(pa.array(v)).type) for v in (["7", "-3"], ["7", "9999999999"], ["2024-02-30"], ["+5"])]
    ['int32', 'int64', 'string', 'int32']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if type_ is not None and (pa.types.is_string(type_) or pa.types.is_large_string(type_)):
        return texts.cast(type_)
    own = _own_kind(texts)
    if own is not None and (type_ is None or own.type == type_):
        return own
    if own is not None and pa.types.is_integer(own.type) and pa.types.is_integer(type_):
        return pc.cast(own, type_)  # a range check, as each value's own cast would be
    values = texts.to_pylist()
    return typed_values(values, type_ or infer(values))


def _own_kind(texts: pa.Array) -> pa.Array | None:
    """``texts`` as their common kind's type (:func:`infer`) by one cast, where every value is a
    plain integer (``-?[0-9]``, at most 18 digits: int, else bigint) or date (``yyyy-MM-dd``, a
    real day); else None (the rules of :func:`kind_of` decide value by value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    present = pc.drop_null(texts)
    if not len(present):
        return None
    first = present[0].as_py()  # the one pattern the first value has is the only one to check them all for
    if re.fullmatch(r"-?[0-9]{1,18}", first) and pc.all(pc.match_substring_regex(present, r"^-?[0-9]{1,18}$")).as_py():
        numbers = pc.cast(texts, pa.int64())
        bounds = pc.min_max(numbers)
        fits = _INT32[0] <= bounds["min"].as_py() and bounds["max"].as_py() <= _INT32[1]
        return numbers.cast(pa.int32()) if fits else numbers
    if (_DATE.fullmatch(first) and pc.all(pc.match_substring_regex(present, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")).as_py()
            and not pc.any(pc.starts_with(present, "0000")).as_py()):  # no year 0 in Python's dates, so no date
        try:
            return pc.cast(texts, pa.date32())
        except pa.ArrowInvalid:  # an impossible day: the column is text
            return None
    return None


def typed_values(values: list[str | None], type_: pa.DataType) -> pa.Array:
    """:func:`typed_value` of each of ``values``, as one array; made in one go where every value is
    of the column's own kind (a listing's folders usually are), else value by value."""
    import pyarrow as pa

    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return pa.array(values, type_)
    kinds = [None if value is None else kind_of(value) for value in values]
    own = {kind[0] for kind in kinds if kind is not None}
    if len(own) == 1 and arrow_type(own.pop()) == type_:
        return pa.array([None if kind is None else kind[1] for kind in kinds], type_)
    return pa.array([typed_value(value, type_) for value in values], type_)


# -- writing ----------------------------------------------------------------------------------


def with_spark_text(data: pa.Table | pa.RecordBatchReader, partition_by: Iterable[str], what: str):
    """``data`` (a table or a stream of batches) with each partition column replaced by its values'
    Spark text (:func:`spark_text`; null for a null or empty value), for pyarrow's hive writer to
    name the folders by; :func:`respell` then gives them Spark's spelling. ``what``: the write, as
    the error of a value no folder can name says it (:func:`check_folder_values`)."""
    import pyarrow as pa

    columns = list(partition_by)

    def converted(part):
        for column in columns:
            index = part.schema.get_field_index(column)
            part = part.set_column(index, column, _texts(column, part.column(index), what))
        return part

    if isinstance(data, pa.Table):
        return converted(data)
    return pa.RecordBatchReader.from_batches(converted(data.schema.empty_table()).schema,
                                             (converted(batch) for batch in data))


# the longest file or folder name local file systems take (ext4, xfs, APFS, NTFS: 255 bytes)
MAX_NAME_BYTES = 255


def check_folder_values(data: pa.Table | pa.RecordBatchReader, partition_by: Iterable[str], what: str):
    """``data`` once its partition values are known to name folders (see :func:`_texts`): a table
    checked now, before anything is written; a stream's batches as they pass. ``what``: the write,
    as its error names it.

    Raises:
        InvalidArgumentError: naming ``what``, the column and the value.
    """
    import pyarrow as pa

    columns = list(partition_by)

    def checked(part):
        for name in columns:
            _texts(name, part.column(name), what)
        return part

    if isinstance(data, pa.Table):
        return checked(data)
    return pa.RecordBatchReader.from_batches(data.schema, (checked(batch) for batch in data))


def _texts(name: str, column, what: str):
    """Each value's Spark text (null for a null or empty value), rendered once per distinct value.
    Timestamps come in microseconds (:func:`lakeio.engines.in_microseconds` refuses finer ones).

    Raises:
        InvalidArgumentError: naming ``what`` (the write), a value that no folder can name: a
            folder name longer than :data:`MAX_NAME_BYTES`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeio.errors import InvalidArgumentError

    distinct = pc.unique(column)
    texts = [None if value is None or value == "" else spark_text(value) for value in distinct.to_pylist()]
    for text in texts:
        if text is not None and len(folder_name(name, text).encode()) > MAX_NAME_BYTES:
            raise InvalidArgumentError(f"{what}: partition column {name!r}: value {text[:40]!r}... makes a folder "
                                       f"name longer than {MAX_NAME_BYTES} bytes, which file systems refuse: "
                                       "make it a data column, or partition by a shorter key")
    return pc.take(pa.array(texts, pa.string()), pc.index_in(column, value_set=distinct))


def respell(filesystem, root: str, paths: list[str]) -> list[str]:
    """Moves the files pyarrow's hive writer wrote under ``root`` (folders URI-encoded:
    ``k=%C3%A9%20t``) to the folders Spark names (``k=é t``); returns their new paths. Only folders
    spelt differently move: integers, dates and plain ASCII text are spelt alike."""
    from pyarrow import fs as pafs

    moved, emptied = [], set()
    for path in paths:
        parts = path[len(root):].strip("/").split("/")
        spelt = [_spark_spelling(part) for part in parts[:-1]] + parts[-1:]
        target = "/".join([root.rstrip("/"), *spelt])
        if target != path:
            filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
            filesystem.move(path, target)
            first = next(i for i, (old, new) in enumerate(zip(parts, spelt, strict=True)) if old != new)
            emptied.add("/".join([root.rstrip("/"), *parts[:first + 1]]))
        moved.append(target)
    for folder in emptied:  # left empty by the moves: no stray folder may reach the dataset
        if filesystem.get_file_info(folder).type == pafs.FileType.Directory:
            filesystem.delete_dir(folder)
    return moved


def _spark_spelling(segment: str) -> str:
    column, equals, value = segment.partition("=")
    if not equals:
        return segment
    column, value = urllib.parse.unquote(column), urllib.parse.unquote(value)
    return f"{escape(column)}={value if value == NULL_NAME else escape(value)}"
