"""lakeio.predicate: the filter grammar, structured (DNF) filters, SQL and Arrow rendering."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from lakeio.errors import InvalidArgumentError, LakeioError
from lakeio.predicate import (
    And,
    Compare,
    In,
    IsNull,
    Not,
    Or,
    columns_of,
    conjuncts_where,
    parse_filter,
    to_arrow,
    to_sql,
)

C = Compare


# -- parsing SQL strings -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("x = 1", C("x", "=", 1)),
    ("x == 1", C("x", "=", 1)),
    ("x != 1", C("x", "!=", 1)),
    ("x <> 1", C("x", "!=", 1)),
    ("x < 1", C("x", "<", 1)),
    ("x <= 1", C("x", "<=", 1)),
    ("x > 1", C("x", ">", 1)),
    ("x >= 1", C("x", ">=", 1)),
    ("x>=1", C("x", ">=", 1)),
    ("x=-1", C("x", "=", -1)),
    ("x > -1.5", C("x", ">", -1.5)),
    ("x < 2.", C("x", "<", 2.0)),
    ("x < 1e3", C("x", "<", 1000.0)),
    ("x < -2.5E-1", C("x", "<", -0.25)),
    ("x IN (1, 2, 3)", In("x", (1, 2, 3))),
    ("x in ('a')", In("x", ("a",))),
    ("x NOT IN (1, 2)", Not(In("x", (1, 2)))),
    ("x not in (-1, 2.5, 'z')", Not(In("x", (-1, 2.5, "z")))),
    ("x BETWEEN 1 AND 5", And((C("x", ">=", 1), C("x", "<=", 5)))),
    ("x NOT BETWEEN 1 AND 5", Not(And((C("x", ">=", 1), C("x", "<=", 5))))),
    ("x IS NULL", IsNull("x")),
    ("x is not null", Not(IsNull("x"))),
    ("s = 'it''s'", C("s", "=", "it's")),
    ("s = 'back\\\\slash'", C("s", "=", "back\\slash")),
    ("s = 'esc\\'aped'", C("s", "=", "esc'aped")),
    ("s = ''", C("s", "=", "")),
    ("s = 'a AND b = 1'", C("s", "=", "a AND b = 1")),
    ("`my col` = 1", C("my col", "=", 1)),
    ("`odd``name` = 1", C("odd`name", "=", 1)),
    ("`select` IN (1)", In("select", (1,))),
    ("a.b = 1", C("a.b", "=", 1)),
    ("_x1 = 1", C("_x1", "=", 1)),
    ("d = DATE '2024-01-31'", C("d", "=", dt.date(2024, 1, 31))),
    ("t >= TIMESTAMP '2024-01-31 10:20:30'", C("t", ">=", dt.datetime(2024, 1, 31, 10, 20, 30))),
    ("t < timestamp '2024-01-31T10:20:30.5'", C("t", "<", dt.datetime(2024, 1, 31, 10, 20, 30, 500000))),
    ("d IN (DATE '2024-01-01', DATE '2024-02-01')", In("d", (dt.date(2024, 1, 1), dt.date(2024, 2, 1)))),
    ("b = TRUE", C("b", "=", True)),
    ("b != false", C("b", "!=", False)),
    ("x BETWEEN -2 AND -1.5", And((C("x", ">=", -2), C("x", "<=", -1.5)))),
])
def test_parse_filter_single_conditions(text, expected):
    assert parse_filter(text) == expected


def test_parse_literal_types_are_exact():
    """1 stays an int, 1.0 a float, TRUE a bool (not the int 1)."""
    assert type(parse_filter("x = 1").value) is int
    assert type(parse_filter("x = 1.0").value) is float
    assert type(parse_filter("x = TRUE").value) is bool
    assert type(parse_filter("x = DATE '2024-01-01'").value) is dt.date
    assert type(parse_filter("x = TIMESTAMP '2024-01-01 00:00:00'").value) is dt.datetime


@pytest.mark.parametrize("text, expected", [
    # AND binds tighter than OR.
    ("a = 1 OR b = 2 AND c = 3", Or((C("a", "=", 1), And((C("b", "=", 2), C("c", "=", 3)))))),
    ("a = 1 AND b = 2 OR c = 3", Or((And((C("a", "=", 1), C("b", "=", 2))), C("c", "=", 3)))),
    # NOT binds tighter than AND.
    ("NOT a = 1 AND b = 2", And((Not(C("a", "=", 1)), C("b", "=", 2)))),
    ("NOT a = 1 OR b = 2", Or((Not(C("a", "=", 1)), C("b", "=", 2)))),
    ("NOT NOT a = 1", Not(Not(C("a", "=", 1)))),
    # Parentheses override.
    ("(a = 1 OR b = 2) AND c = 3", And((Or((C("a", "=", 1), C("b", "=", 2))), C("c", "=", 3)))),
    ("NOT (a = 1 AND b = 2)", Not(And((C("a", "=", 1), C("b", "=", 2))))),
    ("((a = 1))", C("a", "=", 1)),
    # Chains flatten into one And / Or.
    ("a = 1 AND b = 2 AND c = 3", And((C("a", "=", 1), C("b", "=", 2), C("c", "=", 3)))),
    ("a = 1 or b = 2 or c = 3", Or((C("a", "=", 1), C("b", "=", 2), C("c", "=", 3)))),
    # BETWEEN's AND is not the boolean AND.
    ("x BETWEEN 1 AND 2 AND y = 3", And((And((C("x", ">=", 1), C("x", "<=", 2))), C("y", "=", 3)))),
    ("year = 2013 AND month IN (1, 2)", And((C("year", "=", 2013), In("month", (1, 2))))),
])
def test_parse_filter_boolean_structure(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize("spec", [None, "", "   ", "\n\t", []])
def test_parse_filter_empty_specs_mean_no_filter(spec):
    assert parse_filter(spec) is None


def test_parse_filter_passes_predicates_through():
    predicate = And((C("a", "=", 1), IsNull("b")))
    assert parse_filter(predicate) is predicate


# -- structured (DNF) filters ------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ([("x", "=", 1)], C("x", "=", 1)),
    ([("x", "==", 1)], C("x", "=", 1)),
    ([("x", "<>", 1)], C("x", "!=", 1)),
    ([("x", " >= ", 1)], C("x", ">=", 1)),
    ([("x", "in", [1, 2])], In("x", (1, 2))),
    ([("x", "IN", (1, 2))], In("x", (1, 2))),
    ([("x", "in", {3})], In("x", (3,))),
    ([("x", "not in", [1, 2])], Not(In("x", (1, 2)))),
    ([("x", "Not In", ["a"])], Not(In("x", ("a",)))),
    ([("x", ">", 1), ("y", "<=", "b")], And((C("x", ">", 1), C("y", "<=", "b")))),
    ([("d", "=", dt.date(2024, 1, 1))], C("d", "=", dt.date(2024, 1, 1))),
    ([[("x", "=", 1), ("y", "=", 2)], [("z", "in", [3])]],
     Or((And((C("x", "=", 1), C("y", "=", 2))), In("z", (3,))))),
    ([[("x", "=", 1)], [("y", "=", 2)]], Or((C("x", "=", 1), C("y", "=", 2)))),
    ((item for item in [("x", "=", 1)]), C("x", "=", 1)),  # any iterable
])
def test_parse_filter_dnf(spec, expected):
    assert parse_filter(spec) == expected


@pytest.mark.parametrize("spec, fragment", [
    ([("x", "=")], "expected (column, op, value)"),
    ([("x", "=", 1, 2)], "expected (column, op, value)"),
    ([(1, "=", 1)], "expected (column, op, value)"),
    ([("x", "like", "a%")], "unknown operator 'like'"),
    ([("x", "in", "abc")], "needs a list of values"),
    ([("x", "not in", 5)], "needs a list of values"),
    ([("x", "=", 1), [("y", "=", 2)]], "expected a list of (column, op, value) tuples"),
    ([["x", "=", 1]], "expected a list of (column, op, value) tuples"),
    (["x = 1"], "expected a list of (column, op, value) tuples"),
])
def test_parse_filter_dnf_errors(spec, fragment):
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter(spec)
    assert fragment in str(caught.value)
    assert "structured filter" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_dnf_unknown_operator_lists_the_valid_ones():
    with pytest.raises(InvalidArgumentError, match=r"use one of .*<=.*in, not in"):
        parse_filter([("x", "~", 1)])


# -- malformed filter strings ------------------------------------------------------------------

@pytest.mark.parametrize("text, position, fragment", [
    ("x = ", 4, "expected a value, found the end"),
    ("x =", 3, "expected a value, found the end"),
    ("x", 1, "expected an operator, found the end"),
    ("(x = 1", 6, "expected ')', found the end"),
    ("(x = 1 x", 7, "expected ')'"),
    ("x IN 1", 5, "expected '(' after IN"),
    ("x IN (1 2)", 8, "expected ',' or ')'"),
    ("x IN (1,", 8, "expected a value, found the end"),
    ("x IN ()", 6, "expected a number"),
    ("x = 1 AND", 9, "expected a column or '(', found the end"),
    ("AND = 1", 0, "expected a column name"),
    ("x = 1 OR OR y = 2", 9, "expected a column name"),
    ("= 1", 0, "expected a column name"),
    ("NULL IS NULL", 0, "expected a column name"),
    ("x BETWEEN 1 2", 12, "expected AND"),
    ("x NOT = 1", 6, "expected an operator"),
    ("x NOT IS NULL", 6, "expected an operator"),
    ("x IS 1", 5, "expected NULL"),
    ("x = y", 4, "expected a number, a 'string', TRUE/FALSE"),
    ("x = NULL", 4, "expected a number"),
    ("x = 1 y = 2", 6, "unexpected text"),
    ("x = 1)", 5, "unexpected text"),
    ("d = DATE '2024-13-01'", 9, "not a valid DATE"),
    ("d = DATE 2024", 9, "expected a quoted value after DATE"),
    ("t = TIMESTAMP 'noon'", 14, "not a valid TIMESTAMP"),
])
def test_malformed_filter_message_names_text_and_position(text, position, fragment):
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert repr(text) in message
    assert f"at position {position}:" in message
    assert fragment in message
    assert isinstance(caught.value, (LakeioError, ValueError))


@pytest.mark.parametrize("text", ["x = 1 ; y = 2", "x ~ 1", "x = 'unterminated", "x = 1 AND y = #", "x = \"dq\""])
def test_unexpected_character_is_an_invalid_argument_with_a_position(text):
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "unexpected character" in message
    assert re.search(r"at position \d+:", message)


@pytest.mark.parametrize("text, position", [("x = 1 ; y", 6), ("x ~ 1", 2)])
def test_unexpected_character_position_points_at_the_character(text, position):
    with pytest.raises(InvalidArgumentError, match=f"at position {position}:"):
        parse_filter(text)


# -- to_sql round trip ---------------------------------------------------------------------------

ROUND_TRIP = [
    C("x", "=", 1),
    C("x", "!=", -7),
    C("x", "<", 0.1),
    C("x", "<=", -2.5),
    C("x", ">", 1e-7),
    C("x", ">=", 12345678901234),
    C("x", "=", 1.5e300),
    C("b", "=", True),
    C("b", "!=", False),
    C("s", "=", ""),
    C("s", "=", "it's"),
    C("s", "=", "back\\slash"),
    C("s", "=", "both \\' and ''"),
    C("s", "=", "AND OR NOT ( ) , = `"),
    C("s", "=", "unicode: é ß 東京"),
    C("s", "=", "line\nbreak"),
    C("my col", "=", 1),
    C("odd`name", "=", "x"),
    C("NOT", "=", 1),
    C("a.b", ">", 0),
    C("d", ">=", dt.date(2024, 2, 29)),
    C("t", "<", dt.datetime(2024, 1, 31, 23, 59, 59)),
    C("t", "<", dt.datetime(2024, 1, 31, 23, 59, 59, 123456)),
    C("t", "=", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    In("x", (1,)),
    In("x", (1, 2, 3)),
    In("s", ("a", "it's", "")),
    In("d", (dt.date(2024, 1, 1), dt.date(2024, 1, 2))),
    In("mixed", (1, 2.5, "x", True)),
    IsNull("x"),
    Not(IsNull("x")),
    Not(In("x", (1, 2))),
    Not(C("x", "=", 1)),
    Not(Not(C("x", "=", 1))),
    And((C("a", "=", 1), C("b", "=", 2))),
    And((C("a", "=", 1), C("b", "=", 2), IsNull("c"))),
    Or((C("a", "=", 1), C("b", "=", 2))),
    Or((And((C("a", "=", 1), C("b", "=", 2))), Not(Or((C("c", "=", 3), In("d", ("x",))))))),
    And((Or((C("a", "=", 1), C("b", "=", 2))), Or((C("c", "=", 3), C("d", "=", 4))))),
    And((C("a", "=", 1), And((C("b", "=", 2), C("c", "=", 3))))),  # nesting is kept
    Or((Or((C("a", "=", 1), C("b", "=", 2))), C("c", "=", 3))),
    Not(And((C("x", ">=", 1), C("x", "<=", 5)))),
]


@pytest.mark.parametrize("predicate", ROUND_TRIP, ids=lambda p: to_sql(p)[:60])
def test_to_sql_round_trips(predicate):
    assert parse_filter(to_sql(predicate)) == predicate


@pytest.mark.parametrize("text", [
    "x = 1 AND y IN (1, 2) OR NOT z IS NULL",
    "NOT (a = 'it''s' OR `b c` BETWEEN 1 AND 2) AND d >= DATE '2020-02-02'",
    "t > TIMESTAMP '2024-01-01 00:00:00' OR flag = FALSE",
    "x NOT IN (-1, -2.5) AND y NOT BETWEEN 0 AND 1",
])
def test_to_sql_round_trips_parsed_strings(text):
    predicate = parse_filter(text)
    assert parse_filter(to_sql(predicate)) == predicate


def test_to_sql_quotes_names_and_literals():
    assert to_sql(C("my col", "=", "it's")) == "`my col` = 'it\\'s'"
    assert to_sql(In("x", (1, "a"))) == "`x` IN (1, 'a')"
    assert to_sql(Not(IsNull("x"))) == "NOT (`x` IS NULL)"
    assert to_sql(C("d", "=", dt.date(2024, 1, 2))) == "`d` = DATE '2024-01-02'"
    assert to_sql(C("t", "=", dt.datetime(2024, 1, 2, 3, 4, 5))) == "`t` = TIMESTAMP '2024-01-02 03:04:05'"
    assert to_sql(C("b", "=", True)) == "`b` = TRUE"
    assert to_sql(And((C("a", "=", 1), C("b", "=", 2)))) == "(`a` = 1) AND (`b` = 2)"
    assert to_sql(Or((C("a", "=", 1), C("b", "=", 2)))) == "(`a` = 1) OR (`b` = 2)"


# -- columns_of ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, columns", [
    (None, set()),
    ("x = 1", {"x"}),
    ("x IN (1) AND y IS NULL OR NOT (z BETWEEN 1 AND 2)", {"x", "y", "z"}),
    ("x = 1 OR x = 2", {"x"}),
    ("`a b` = 1 AND `c``d` = 2", {"a b", "c`d"}),
    ([[("p", "=", 1)], [("q", "in", [1])]], {"p", "q"}),
])
def test_columns_of(spec, columns):
    assert columns_of(parse_filter(spec)) == columns


# -- to_arrow: SQL three-valued logic on a real Arrow scan --------------------------------------

ROWS = {
    "id": [1, 2, 3, 4, 5, 6, 7, 8],
    "x": [1, 2, 3, None, 1, None, 5, 2],
    "y": [1, 2, None, 1, None, 2, 3, None],
    "s": ["a", "b", None, "it's", "c", "a", None, "b"],
    "f": [1.5, -2.5, None, 0.0, 3.25, None, -0.5, 10.0],
    "b": [True, False, None, True, False, None, True, False],
}
TABLE = pa.table(ROWS)


def arrow_ids(spec) -> list[int]:
    expression = to_arrow(parse_filter(spec))
    return sorted(ds.dataset(TABLE).to_table(filter=expression, columns=["id"])["id"].to_pylist())


@pytest.mark.parametrize("text, ids", [
    ("x NOT IN (1, 2)", [3, 7]),            # null rows dropped, as in SQL
    ("NOT (x = 1)", [2, 3, 7, 8]),          # null rows dropped
    ("x != 1", [2, 3, 7, 8]),
    ("x IN (1, 2)", [1, 2, 5, 8]),
    ("NOT (x IN (1, 2))", [3, 7]),
    ("x NOT BETWEEN 2 AND 3", [1, 5, 7]),
    ("x IS NULL", [4, 6]),
    ("x IS NOT NULL", [1, 2, 3, 5, 7, 8]),
    ("x = 1 OR y = 1", [1, 4, 5]),          # NULL OR TRUE is TRUE
    ("NOT (x = 1 AND y = 1)", [2, 3, 6, 7, 8]),  # NULL AND FALSE is FALSE
    ("NOT (x IN (1) OR y = 1)", [2, 7]),
    ("x IN (1) OR x IS NULL", [1, 4, 5, 6]),
    ("s = 'it''s'", [4]),
    ("s NOT IN ('a')", [2, 4, 5, 8]),
    ("f < -1", [2]),
    ("f BETWEEN -0.5 AND 1.5", [1, 4, 7]),
    ("b = TRUE", [1, 4, 7]),
    ("NOT (b = TRUE)", [2, 5, 8]),
])
def test_to_arrow_three_valued_logic(text, ids):
    assert arrow_ids(text) == ids


def test_to_arrow_dnf_filters():
    assert arrow_ids([("x", "not in", [1, 2])]) == [3, 7]
    assert arrow_ids([[("x", "=", 1), ("y", "=", 1)], [("s", "=", "b")]]) == [1, 2, 8]


SQL_FILTERS = [
    "x = 1", "x == 2", "x <> 1", "x != 1", "x < 3", "x <= 3", "x > 1", "x >= 2",
    "x IN (1, 2)", "x NOT IN (1, 2)", "x NOT IN (5)", "NOT x IN (1, 5)",
    "x BETWEEN 1 AND 2", "x NOT BETWEEN 1 AND 2",
    "x IS NULL", "x IS NOT NULL", "NOT x IS NULL",
    "x = 1 AND y = 1", "x = 1 OR y = 1", "NOT (x = 1 OR y = 2)", "NOT (x = 1 AND y IS NULL)",
    "x > 1 AND y > 1 OR s = 'a'", "x > 1 AND (y > 1 OR s = 'a')", "NOT NOT x = 2",
    "s = 'it''s'", "s >= 'b'", "s IN ('a', 'c') OR f < 0", "NOT (s IN ('a', 'c') OR f < 0)",
    "`f` BETWEEN -1 AND 2", "f > -0.75 AND NOT (f = 0.0)",
    "b = TRUE", "b = FALSE", "NOT (b = TRUE) OR x IS NULL", "b != TRUE AND y IN (1, 2, 3)",
    "(x IN (1, 2, 3) OR y IN (1, 2)) AND NOT (s IS NULL OR f IS NULL)",
]


@pytest.fixture(scope="module")
def sqlite_table():
    """The same rows in SQLite, whose WHERE implements SQL three-valued logic: the oracle."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (id INTEGER, x INTEGER, y INTEGER, s TEXT, f REAL, b BOOLEAN)")
    connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", list(zip(*ROWS.values())))
    yield connection
    connection.close()


@pytest.mark.parametrize("text", SQL_FILTERS)
def test_to_arrow_agrees_with_sql(sqlite_table, text):
    expected = sorted(row[0] for row in sqlite_table.execute(f"SELECT id FROM t WHERE {text}"))
    assert arrow_ids(text) == expected


@pytest.mark.parametrize("text", SQL_FILTERS)
def test_to_sql_rendering_keeps_sql_meaning(sqlite_table, text):
    """The rendered SQL (Spark's dialect, which SQLite shares for these) selects the same rows."""
    rendered = to_sql(parse_filter(text))
    if "\\'" in rendered:  # SQLite does not take backslash escapes; Spark does.
        rendered = rendered.replace("\\'", "''")
    expected = sorted(row[0] for row in sqlite_table.execute(f"SELECT id FROM t WHERE {text}"))
    assert sorted(row[0] for row in sqlite_table.execute(f"SELECT id FROM t WHERE {rendered}")) == expected


def test_to_arrow_dates_and_timestamps():
    table = pa.table({
        "id": [1, 2, 3],
        "d": pa.array([dt.date(2024, 1, 1), dt.date(2024, 2, 1), None]),
        "t": pa.array([dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 12), None], pa.timestamp("us")),
    })

    def ids(text):
        return sorted(ds.dataset(table).to_table(filter=to_arrow(parse_filter(text)))["id"].to_pylist())

    assert ids("d >= DATE '2024-01-15'") == [2]
    assert ids("d IN (DATE '2024-01-01')") == [1]
    assert ids("NOT (d = DATE '2024-01-01')") == [2]
    assert ids("t > TIMESTAMP '2024-01-01 11:00:00'") == [2]
    assert ids("t BETWEEN TIMESTAMP '2024-01-01 10:00:00' AND TIMESTAMP '2024-01-01 11:00:00'") == [1]
    # As in Spark, a date is compared with a timestamp as midnight of that day, in IN as in =
    # (Arrow's own isin would cast the timestamp to its day).
    assert ids("d IN (TIMESTAMP '2024-01-01 12:00:00')") == ids("d = TIMESTAMP '2024-01-01 12:00:00'") == []
    assert ids("d IN (TIMESTAMP '2024-01-01 00:00:00', DATE '2024-02-01')") == [1, 2]
    assert ids("NOT (d IN (TIMESTAMP '2024-01-01 12:00:00'))") == [1, 2]


# -- structured filters at their edges ----------------------------------------------------------

def test_dnf_with_only_empty_branches_is_usable():
    predicate = parse_filter([[]])
    # An OR whose only branch is an empty AND is TRUE: no filter at all, or one that keeps every row.
    assert predicate is None or arrow_ids(predicate) == ROWS["id"]


def test_dnf_empty_branch_means_true():
    assert parse_filter([[], [("x", "=", 1)]]) is None  # no filter: every row


def test_dnf_none_value_is_rejected():
    with pytest.raises(InvalidArgumentError):
        to_sql(parse_filter([("x", "=", None)]))


def test_dnf_empty_in_list_is_rejected():
    with pytest.raises(InvalidArgumentError):
        parse_filter([("x", "in", [])])


# -- hostile filters -----------------------------------------------------------------------------

HOSTILE_VALUES = ["' OR TRUE --", "O'Brien", "back\\slash", "a\\'b", "-- x", "Zürich 日本", "line\nbreak",
                  "${spark.app.name}", "$", "''"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_strings_render_as_one_literal_for_each_reader(value):
    predicate = C("p", "=", value)
    assert parse_filter(to_sql(predicate)) == predicate
    assert "${" not in to_sql(predicate), "Spark would substitute a ${...} in SQL text"
    delta = to_sql(predicate, dialect="delta")
    assert delta == "`p` = '" + value.replace("'", "''") + "'"  # DataFusion: quotes doubled, backslash plain


def test_spark_sql_refuses_a_column_name_it_would_substitute():
    with pytest.raises(InvalidArgumentError, match="substitute"):
        to_sql(C("${env:HOME}", "=", 1))


@pytest.mark.parametrize("text", ["NOT " * 2000 + "x = 1", "(" * 2000 + "x = 1" + ")" * 2000,
                                  "x = 1 AND " + "NOT (" * 600 + "x = 1" + ")" * 600])
def test_deep_nesting_is_refused_clearly(text):
    with pytest.raises(InvalidArgumentError, match="more than 100 nested") as error:
        parse_filter(text)
    assert len(str(error.value)) < 400


def test_deep_built_predicates_are_refused_without_recursion():
    predicate = C("x", "=", 1)
    for _ in range(5000):
        predicate = Not(predicate)
    with pytest.raises(InvalidArgumentError, match="nested more than 100"):
        parse_filter(predicate)


@pytest.mark.parametrize("text, fragment", [
    ("x = " + "9" * 5000, "outside the 64-bit range"),
    ("x = 9223372036854775808", "outside the 64-bit range"),
    ("x < 1e999", "not a finite double"),
    ("x > -1e999", "not a finite double"),
])
def test_out_of_range_numbers_are_refused(text, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment) as error:
        parse_filter(text)
    assert len(str(error.value)) < 400


def test_edge_of_range_numbers_are_kept():
    assert parse_filter("x = 9223372036854775807") == C("x", "=", 2**63 - 1)
    assert parse_filter("x = -9223372036854775808") == C("x", "=", -(2**63))
    assert parse_filter("x < 1.5e308") == C("x", "<", 1.5e308)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 2**64, -(2**63) - 1])
def test_structured_non_finite_and_huge_values_are_refused(value):
    with pytest.raises(InvalidArgumentError, match="structured filter on 'x'"):
        parse_filter([("x", "<", value)])
    with pytest.raises(InvalidArgumentError, match="filter on 'x'"):
        parse_filter(C("x", "<", value))


ON_INT_DAY = lambda column, value: column == "day" and (value is None or type(value) is int)  # noqa: E731


@pytest.mark.parametrize("text, kept", [
    ("day = 1", "day = 1"),
    ("day = 1 AND carrier = 'UA'", "day = 1"),
    ("(day = 1 AND (day < 9 AND carrier = 'UA')) AND NOT day IN (3, 4)", "day = 1 AND day < 9 AND NOT day IN (3, 4)"),
    ("day = 1 OR day IS NULL", "day = 1 OR day IS NULL"),
    ("day = 1 OR carrier = 'UA'", None),  # an OR with another column: no term can be handed on
    ("NOT (day = 1 AND carrier = 'UA')", None),
    ("day = 1.5 AND day = 2", "day = 2"),  # a literal of another kind than the column's
    ("day IN (1, 'x')", None),
    ("carrier = 'UA'", None),
])
def test_conjuncts_where_keeps_the_and_terms_that_fit(text, kept):
    found = conjuncts_where(parse_filter(text), ON_INT_DAY)
    assert found == parse_filter(kept)


def test_conjuncts_where_of_no_filter():
    assert conjuncts_where(None, ON_INT_DAY) is None
