"""Row filters: one small grammar, parsed once, rendered for each engine.

A filter is either a SQL-like string (``"year = 2013 AND month IN (1, 2)"``) or structured
predicates in the DNF form pyarrow and delta-rs use (``[("year", "=", 2013)]``, or a list of such
lists for OR). Both become the same tree, so Arrow and Spark filter with one meaning.

Grammar: comparisons (``= == != <> < <= > >=``), ``[NOT] IN (...)``, ``[NOT] BETWEEN a AND b``,
``IS [NOT] NULL``, ``AND``/``OR``/``NOT`` and parentheses. Literals: numbers, ``'strings'``,
``TRUE``/``FALSE``, ``DATE 'yyyy-mm-dd'``, ``TIMESTAMP 'yyyy-mm-dd hh:mm:ss'``. Columns are bare
names or ``backquoted``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn
from typing import Literal as OneOf

from lakeio.errors import InvalidArgumentError

Literal = int | float | str | bool | dt.date | dt.datetime

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
MAX_DEPTH = 100  # nesting of NOT, AND/OR and parentheses a filter may have
INT64 = (-(2**63), 2**63 - 1)  # the integers every engine holds as a literal
Dialect = str  # "spark" (Spark SQL) or "delta" (delta-rs's DataFusion SQL)
#: How a column holds time, for typing the literals compared with it (:func:`typed`): dates,
#: instants (a timestamp with a zone; Spark ``TIMESTAMP``) or wall-clock times (``TIMESTAMP_NTZ``).
TimeKind = OneOf["date", "timestamp", "timestamp_ntz"]


@dataclass(frozen=True)
class Compare:
    column: str
    op: str  # one of COMPARISONS
    value: Literal


@dataclass(frozen=True)
class In:
    column: str
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class IsNull:
    column: str


@dataclass(frozen=True)
class Not:
    operand: Predicate


@dataclass(frozen=True)
class And:
    operands: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Predicate, ...]


Predicate = Compare | In | IsNull | Not | And | Or
FilterSpec = str | Predicate | Iterable[Any] | None


def parse_filter(spec: FilterSpec) -> Predicate | None:
    """Turns a ``where`` string or structured predicates into a predicate tree.

    Args:
        spec: a SQL-like string, DNF tuples, an already built predicate, or None.

    Returns:
        The predicate, or None when ``spec`` is None or blank.

    Raises:
        InvalidArgumentError: the filter does not parse; the message points at the offending text.

    Example:
        >>> parse_filter("year = 2013 AND month IN (1, 2)")
        And(operands=(Compare(column='year', op='=', value=2013), In(column='month', values=(1, 2))))
    """
    if spec is None:
        return None
    if isinstance(spec, (Compare, In, IsNull, Not, And, Or)):
        _check_tree(spec)
        return spec
    if isinstance(spec, str):
        return _Parser(spec).parse() if spec.strip() else None
    return _from_dnf(list(spec))


def _check_tree(predicate: Predicate) -> None:
    """Refuses a built predicate nested deeper than ``MAX_DEPTH`` or holding a literal no engine
    reads (walked without recursion, so a hostile tree cannot exhaust the stack here)."""
    pending = [(predicate, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidArgumentError(f"filter is nested more than {MAX_DEPTH} levels deep; simplify it")
        if isinstance(node, Compare):
            check_literal(node.value, f"filter on {node.column!r}")
        elif isinstance(node, In):
            for value in node.values:
                check_literal(value, f"filter on {node.column!r}")
        elif isinstance(node, Not):
            pending.append((node.operand, depth + 1))
        elif isinstance(node, (And, Or)):
            pending.extend((operand, depth + 1) for operand in node.operands)


def check_literal(value: Any, where: str) -> None:
    """Refuses a literal no engine compares faithfully: a non-finite float or an integer outside int64.

    Raises:
        InvalidArgumentError: naming ``where`` and the value.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(f"{where}: {value!r} is not a finite number; filter with a finite bound")
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        raise InvalidArgumentError(f"{where}: the integer {_short(str(value))} is outside the 64-bit range")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def columns_of(predicate: Predicate | None) -> set[str]:
    """The columns a predicate reads."""
    if predicate is None:
        return set()
    if isinstance(predicate, (Compare, In, IsNull)):
        return {predicate.column}
    if isinstance(predicate, Not):
        return columns_of(predicate.operand)
    return set().union(*(columns_of(p) for p in predicate.operands))


def conjuncts_where(predicate: Predicate | None, fits: Callable[[str, Literal | None], bool]) -> Predicate | None:
    """The part of ``predicate`` a narrower reader can apply: its top-level AND terms each of whose
    comparisons ``fits`` (called with the column and each literal, None for ``IS NULL``); None when
    no term fits. Every row ``predicate`` keeps, the result keeps too.

    Example:
        >>> on_day = lambda column, value: column == "day" and isinstance(value, int)
        >>> conjuncts_where(parse_filter("day IN (1, 2) AND carrier = 'UA' AND day > 'x'"), on_day)
        In(column='day', values=(1, 2))
    """
    if predicate is None:
        return None
    terms = [predicate]
    kept: list[Predicate] = []
    while terms:
        term = terms.pop(0)
        if isinstance(term, And):
            terms[:0] = term.operands
        elif _fits(term, fits):
            kept.append(term)
    return _conjunction(kept) if kept else None


def _fits(predicate: Predicate, fits: Callable[[str, Literal | None], bool]) -> bool:
    pending = [predicate]
    while pending:
        node = pending.pop()
        if isinstance(node, Compare):
            values: tuple[Literal | None, ...] = (node.value,)
        elif isinstance(node, In):
            values = node.values
        elif isinstance(node, IsNull):
            values = (None,)
        else:
            pending.extend((node.operand,) if isinstance(node, Not) else node.operands)
            continue
        if not all(fits(node.column, value) for value in values):
            return False
    return True


def to_sql(predicate: Predicate, table: str | None = None, dialect: Dialect = "spark") -> str:
    """Renders a predicate as SQL text, quoting every name and literal; ``table`` qualifies each
    column (``source.`op```), as a MERGE condition needs.

    ``dialect`` picks the reader's quoting: ``"spark"`` (Spark SQL: a quote or backslash in a string
    is backslash-escaped, and ``$`` is written ``\\u0024`` so Spark's ``${...}`` variable
    substitution finds nothing to replace) or ``"delta"`` (delta-rs's DataFusion SQL: a quote is
    doubled, a backslash is an ordinary character).

    Raises:
        InvalidArgumentError: a column name Spark would substitute into (one holding ``${``).
    """
    prefix = f"{table}." if table else ""
    column = getattr(predicate, "column", "")
    name = quote_name(column)
    if dialect == "spark" and "${" in name:
        raise InvalidArgumentError(f"column {column!r}: Spark would substitute the '${{...}}' in its name")
    if isinstance(predicate, Compare):
        return f"{prefix}{name} {predicate.op} {_sql_literal(predicate.value, dialect)}"
    if isinstance(predicate, In):
        values = ", ".join(_sql_literal(v, dialect) for v in predicate.values)
        return f"{prefix}{name} IN ({values})"
    if isinstance(predicate, IsNull):
        return f"{prefix}{name} IS NULL"
    if isinstance(predicate, Not):
        return f"NOT ({to_sql(predicate.operand, table, dialect)})"
    joiner = " AND " if isinstance(predicate, And) else " OR "
    return joiner.join(f"({to_sql(p, table, dialect)})" for p in predicate.operands)


def passing_rows(columns: Mapping[str, Any], predicate: Predicate) -> list[int]:
    """The positions of the rows of ``columns`` (name -> ``pyarrow.Array``, one value a row: a
    listing's partition values) that pass ``predicate``, evaluated by Arrow (:func:`to_arrow`)."""
    import numpy as np
    import pyarrow as pa

    table = pa.table(dict(columns))
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    return table.append_column("_row", rows).filter(to_arrow(predicate, table.schema)).column("_row").to_pylist()


def to_arrow(predicate: Predicate, schema=None, fields: Mapping[str, Any] | None = None):
    """Renders a predicate as a ``pyarrow.compute.Expression`` for ``pyarrow.dataset`` scans; with
    the data's ``schema`` (a ``pyarrow.Schema``), its literals typed as Spark types them (:func:`typed`).
    ``fields``: the expressions that stand for some columns (a column the scan converts as it reads)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if schema is not None:
        predicate = typed(predicate, arrow_time_kinds(schema))
    fields = fields or {}
    if isinstance(predicate, (Compare, In, IsNull)):
        field = fields.get(predicate.column, pc.field(predicate.column))
    if isinstance(predicate, Compare):
        value = predicate.value
        return {
            "=": field.__eq__, "!=": field.__ne__, "<": field.__lt__,
            "<=": field.__le__, ">": field.__gt__, ">=": field.__ge__,
        }[predicate.op](value)
    if isinstance(predicate, In):
        # SQL three-valued logic: NULL IN (...) is NULL, so NOT IN drops nulls as Spark does.
        return pc.if_else(field.is_null(), pa.scalar(None, pa.bool_()), _is_in(field, predicate.values))
    if isinstance(predicate, IsNull):
        return field.is_null()
    if isinstance(predicate, Not):
        return ~to_arrow(predicate.operand, fields=fields)
    expressions = [to_arrow(p, fields=fields) for p in predicate.operands]
    combined = expressions[0]
    for expression in expressions[1:]:
        combined = (combined & expression) if isinstance(predicate, And) else (combined | expression)
    return combined


def typed(predicate: Predicate, kinds: Mapping[str, TimeKind]) -> Predicate:
    """``predicate`` with each literal compared with a date or timestamp column typed as Spark
    compares it (:func:`typed_literal`); ``kinds``: the data's date and timestamp columns, each an
    engine's (:func:`arrow_time_kinds`, or the Spark engine's). Both engines filter with the result,
    so a string or a timestamp without a zone means one thing on each."""
    if isinstance(predicate, Compare):
        return replace(predicate, value=typed_literal(predicate.column, predicate.value, kinds.get(predicate.column)))
    if isinstance(predicate, In):
        kind = kinds.get(predicate.column)
        return replace(predicate, values=tuple(typed_literal(predicate.column, v, kind) for v in predicate.values))
    if isinstance(predicate, Not):
        return Not(typed(predicate.operand, kinds))
    if isinstance(predicate, (And, Or)):
        return type(predicate)(tuple(typed(operand, kinds) for operand in predicate.operands))
    return predicate


def arrow_time_kinds(schema) -> dict[str, TimeKind]:
    """The date and timestamp columns of a ``pyarrow.Schema``, by :data:`TimeKind`."""
    import pyarrow as pa

    kinds: dict[str, TimeKind] = {}
    for field in schema:
        if pa.types.is_date(field.type):
            kinds[field.name] = "date"
        elif pa.types.is_timestamp(field.type):
            kinds[field.name] = "timestamp" if field.type.tz is not None else "timestamp_ntz"
    return kinds


def typed_literal(column: str, value: Literal, kind: TimeKind | None) -> Literal:
    """``value`` as Spark compares it with a column of ``kind`` (None: not a date or timestamp).

    Spark's sessions run in UTC (lakeio sets it), so: a string compared with a date or timestamp
    column is read as one (``'2024-01-31'``, ``'2024-01-31 12:00:00'``, ISO 8601 with an offset);
    a timestamp without a time zone compared with a column of instants is a UTC time; a date
    compared with a timestamp column is its midnight.

    Raises:
        InvalidArgumentError: a string that is not a date or timestamp, naming it and the column.

    Example:
        >>> typed_literal("day", "2024-01-31", "date")
        datetime.date(2024, 1, 31)
        >>> typed_literal("at", dt.datetime(2024, 1, 31, 12), "timestamp")
        datetime.datetime(2024, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)
    """
    if kind is None or isinstance(value, bool) or not isinstance(value, (str, dt.date)):
        return value
    if isinstance(value, str):
        value = _parse_time(column, value, date_only=kind == "date")
    if kind == "date":
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if kind == "timestamp_ntz":  # a wall-clock column: an instant compares as its UTC time
        return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _parse_time(column: str, text: str, date_only: bool) -> dt.date:
    """A filter's string as the date (``date_only``) or timestamp Spark's cast reads in it."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        kind = "date (yyyy-mm-dd)" if date_only else "timestamp (yyyy-mm-dd hh:mm:ss)"
        raise InvalidArgumentError(f"filter on {column!r}: {_short(text)!r} is not a {kind}, "
                                   f"and {column!r} holds {'dates' if date_only else 'timestamps'}") from None
    return moment.date() if date_only else moment


def _is_in(field, values: tuple[Literal, ...]):
    """``field IN values`` compared as Spark compares: ``isin`` casts its values to the column's type
    (a timestamp to a date column's day), so values of any type but one exact kind are compared one
    by one, each with ``=``, which casts both sides to their common type as Spark does."""
    import functools
    import operator

    kinds = {type(value) for value in values}
    if len(kinds) <= 1 and kinds <= {int, str, bool, dt.date}:
        return field.isin(list(values))
    return functools.reduce(operator.or_, [field == value for value in values])


def quote_name(name: str) -> str:
    """A column name as a backtick-quoted SQL identifier (Spark SQL and delta-rs read it)."""
    return "`" + name.replace("`", "``") + "`"


def _sql_literal(value: Literal, dialect: Dialect) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        check_literal(value, "filter")
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if dialect == "delta":
        return "'" + str(value).replace("'", "''") + "'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'").replace("$", "\\u0024") + "'"


_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _from_dnf(spec: list[Any]) -> Predicate | None:
    if not spec:
        return None
    if all(isinstance(item, tuple) for item in spec):
        return _conjunction([_from_tuple(item) for item in spec])
    if all(isinstance(item, list) for item in spec):
        found = [_from_dnf(item) for item in spec]
        branches = [branch for branch in found if branch is not None]
        if len(branches) < len(found):
            return None  # an empty AND branch is always true, and so is the OR around it
        return branches[0] if len(branches) == 1 else Or(tuple(branches))
    raise InvalidArgumentError(
        f"structured filter {spec!r}: expected a list of (column, op, value) tuples, "
        "or a list of such lists for OR"
    )


def _from_tuple(item: tuple) -> Predicate:
    if len(item) != 3 or not isinstance(item[0], str):
        raise InvalidArgumentError(f"structured filter {item!r}: expected (column, op, value)")
    column, op, value = item
    op_key = str(op).strip().lower()
    if op_key in _OPS:
        return Compare(column, _OPS[op_key], _checked_value(value, item))
    if op_key in ("in", "not in"):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise InvalidArgumentError(f"structured filter {item!r}: {op!r} needs a list of values")
        values = tuple(_checked_value(v, item) for v in value)
        if not values:
            raise InvalidArgumentError(f"structured filter {item!r}: {op!r} needs at least one value")
        membership = In(column, values)
        return Not(membership) if op_key == "not in" else membership
    raise InvalidArgumentError(
        f"structured filter {item!r}: unknown operator {op!r}; use one of "
        f"{', '.join(sorted(set(_OPS)))}, in, not in"
    )


def _checked_value(value: Any, item: tuple) -> Literal:
    if value is None:
        raise InvalidArgumentError(
            f"structured filter {item!r}: None is not a value; filter nulls with the string form 'column IS NULL'"
        )
    check_literal(value, f"structured filter on {item[0]!r}")
    return value


def _conjunction(items: list[Predicate]) -> Predicate:
    return items[0] if len(items) == 1 else And(tuple(items))


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<quoted>`(?:[^`]|``)+`)
      | (?P<op><=|>=|<>|!=|==|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


class _Parser:
    """Recursive descent over: or := and (OR and)*; and := not (AND not)*; not := NOT not | atom."""

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                self._fail(pos, "unexpected character")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.index = 0
        self.depth = 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.index < len(self.tokens):
            self._fail(self.tokens[self.index][2], "unexpected text")
        return predicate

    def _fail(self, pos: int, why: str) -> NoReturn:
        raise InvalidArgumentError(f"filter {_short(self.text, 200)!r}: {why} at position {pos}: "
                                   f"{self.text[pos:pos + 20]!r}")

    def _peek_word(self, *words: str) -> bool:
        if self.index < len(self.tokens):
            kind, value, _ = self.tokens[self.index]
            return kind == "word" and value.upper() in words
        return False

    def _next(self, what: str) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            self._fail(len(self.text), f"expected {what}, found the end")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _expect_word(self, word: str) -> None:
        kind, value, pos = self._next(word)
        if kind != "word" or value.upper() != word:
            self._fail(pos, f"expected {word}")

    def _or(self) -> Predicate:
        items = [self._and()]
        while self._peek_word("OR"):
            self.index += 1
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Predicate:
        items = [self._not()]
        while self._peek_word("AND"):
            self.index += 1
            items.append(self._not())
        return _conjunction(items)

    def _nested(self, pos: int) -> None:
        """Counts one more level of NOT or parentheses, refusing more than ``MAX_DEPTH``."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._fail(pos, f"more than {MAX_DEPTH} nested NOTs or parentheses")

    def _not(self) -> Predicate:
        if self._peek_word("NOT"):
            self._nested(self.tokens[self.index][2])
            self.index += 1
            predicate = Not(self._not())
            self.depth -= 1
            return predicate
        return self._atom()

    def _atom(self) -> Predicate:
        kind, value, pos = self._next("a column or '('")
        if kind == "punct" and value == "(":
            self._nested(pos)
            inner = self._or()
            kind, value, pos = self._next("')'")
            if value != ")":
                self._fail(pos, "expected ')'")
            self.depth -= 1
            return inner
        if kind == "quoted":
            column = value[1:-1].replace("``", "`")
        elif kind == "word" and value.upper() not in ("AND", "OR", "NOT", "IN", "IS", "BETWEEN", "NULL"):
            column = value
        else:
            self._fail(pos, "expected a column name")
        return self._condition(column)

    def _condition(self, column: str) -> Predicate:
        negated = False
        if self._peek_word("NOT"):
            self.index += 1
            negated = True
        kind, value, pos = self._next("an operator")
        word = value.upper() if kind == "word" else None
        if word == "IN":
            predicate: Predicate = In(column, self._literal_list())
        elif word == "BETWEEN":
            low = self._literal()
            self._expect_word("AND")
            predicate = And((Compare(column, ">=", low), Compare(column, "<=", self._literal())))
        elif word == "IS" and not negated:
            is_not = self._peek_word("NOT")
            self.index += is_not
            self._expect_word("NULL")
            return Not(IsNull(column)) if is_not else IsNull(column)
        elif kind == "op" and not negated:
            return Compare(column, _OPS[value], self._literal())
        else:
            self._fail(pos, "expected an operator (=, <, IN, BETWEEN, IS NULL, ...)")
        return Not(predicate) if negated else predicate

    def _literal_list(self) -> tuple[Literal, ...]:
        kind, value, pos = self._next("'('")
        if value != "(":
            self._fail(pos, "expected '(' after IN")
        values = [self._literal()]
        while True:
            kind, value, pos = self._next("',' or ')'")
            if value == ")":
                return tuple(values)
            if value != ",":
                self._fail(pos, "expected ',' or ')'")
            values.append(self._literal())

    def _literal(self) -> Literal:
        kind, value, pos = self._next("a value")
        if kind == "number":
            if any(c in value for c in ".eE"):
                number = float(value)
                if not math.isfinite(number):
                    self._fail(pos, "number out of range (not a finite double)")
                return number
            if len(value.lstrip("-")) > 19 or not INT64[0] <= int(value) <= INT64[1]:
                self._fail(pos, "integer outside the 64-bit range")
            return int(value)
        if kind == "string":
            return _unquote(value)
        if kind == "word" and value.upper() in ("TRUE", "FALSE"):
            return value.upper() == "TRUE"
        if kind == "word" and value.upper() in ("DATE", "TIMESTAMP"):
            text_kind, text, text_pos = self._next("a quoted date")
            if text_kind != "string":
                self._fail(text_pos, f"expected a quoted value after {value.upper()}")
            try:
                if value.upper() == "DATE":
                    return dt.date.fromisoformat(_unquote(text))
                return dt.datetime.fromisoformat(_unquote(text))
            except ValueError:
                self._fail(text_pos, f"not a valid {value.upper()}")
        self._fail(pos, "expected a number, a 'string', TRUE/FALSE, DATE '...' or TIMESTAMP '...'")


def _unquote(token: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})|\\(.)|''",
                  lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2) or "'", token[1:-1])
