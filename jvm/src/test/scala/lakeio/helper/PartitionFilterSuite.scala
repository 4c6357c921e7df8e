package lakeio.helper

import java.time.LocalDate

import com.fasterxml.jackson.databind.ObjectMapper
import org.scalatest.funsuite.AnyFunSuite

class PartitionFilterSuite extends AnyFunSuite {
  import Literal._
  import Predicate._
  import Truth.{False, Null, True}

  private val types: String => ColumnType =
    Map("x" -> ColumnType.IntType, "d" -> ColumnType.DateType, "s" -> ColumnType.StringType)
      .withDefaultValue(ColumnType.Unknown)
  private def eval(p: Predicate, values: (String, String)*): Int =
    evaluate(p, values.map { case (k, v) => k -> Option(v) }.toMap, types)
  private def domainOf(p: Predicate, column: String, known: (String, String)*): Domain =
    domain(normalized(p), column, types(column), known.map { case (k, v) => k -> Option(v) }.toMap, types, 64)
  private def ints(values: Int*): Option[Set[Option[Key]]] = Some(values.map(v => Option[Key](NumberKey(v))).toSet)

  test("three-valued logic follows SQL") {
    assert(Truth.not(True) == False && Truth.not(Null) == Null)
    assert(Truth.and(True, Null) == Null && Truth.and(False, Null) == False)
    assert(Truth.or(False, Null) == Null && Truth.or(True, Null) == True)
    assert(Truth.and(Truth.Unknown, False) == False)
    assert(Truth.or(Truth.Unknown, True) == True)
    assert(Truth.not(Truth.Unknown) == Truth.Unknown)
  }

  test("predicates parse from the JSON the Python side sends") {
    val mapper = new ObjectMapper()
    val parsed = Predicate.fromJson(mapper.readTree(
      """{"or": [{"and": [{"column": "x", "op": ">=", "value": {"int": "3"}}, {"not": {"column": "s", "isNull": true}}]},
        |        {"column": "d", "in": [{"date": "2020-01-01"}, {"string": "2020-01-02"}]},
        |        {"column": "t", "op": "=", "value": {"timestamp": "2020-01-01 00:00:00"}},
        |        {"opaque": "a data column"}]}""".stripMargin))
    assert(parsed == Or(Seq(
      And(Seq(Compare("x", ">=", Integral(3)), Not(IsNull("s")))),
      In("d", Seq(Day(LocalDate.of(2020, 1, 1)), Text("2020-01-02"))),
      Compare("t", "=", Other("timestamp")),
      Opaque)))
    assert(Predicate.fromJson(null) == Opaque)
    intercept[BadRequest](Predicate.fromJson(mapper.readTree("""{"column": "x", "op": "~", "value": {"int": "1"}}""")))
    intercept[BadRequest](Predicate.fromJson(mapper.readTree("""{"op": "=", "value": {"int": "1"}}""")))
    intercept[BadRequest](Predicate.fromJson(mapper.readTree("""{"something": 1}""")))
  }

  test("comparisons evaluate on typed partition values, and on null as SQL does") {
    assert(eval(Compare("x", ">", Integral(5)), "x" -> "7") == True)
    assert(eval(Compare("x", ">", Integral(5)), "x" -> "10") == True, "numerically, not as text")
    assert(eval(Compare("x", ">", Integral(5)), "x" -> null) == Null)
    assert(eval(Compare("x", "=", Text("05")), "x" -> "5") == True, "Spark casts the string to the column's type")
    assert(eval(Compare("d", "<", Text("2020-01-02")), "d" -> "2020-01-01") == True)
    assert(eval(Compare("d", "<", Day(LocalDate.of(2020, 1, 2))), "d" -> "2020-01-03") == False)
    assert(eval(Compare("s", ">=", Text("b")), "s" -> "a") == False)
    assert(eval(In("x", Seq(Integral(1), Integral(2))), "x" -> "3") == False)
    assert(eval(IsNull("x"), "x" -> null) == True && eval(IsNull("x"), "x" -> "1") == False)
    assert(eval(Not(Compare("x", "=", Integral(1))), "x" -> null) == Null)
  }

  test("what the helper cannot evaluate is possibly true") {
    assert(eval(Compare("x", "=", Integral(1))) == Truth.Unknown, "a column of a deeper level")
    assert(eval(Opaque, "x" -> "1") == Truth.Unknown)
    assert(eval(Compare("x", "=", Other("timestamp")), "x" -> "1") == Truth.Unknown)
    assert(eval(Compare("x", "=", Text("one")), "x" -> "1") == Truth.Unknown)
    assert(eval(Compare("u", "=", Integral(1)), "u" -> "1") == Truth.Unknown, "a column of unknown type")
    assert(eval(Compare("x", "=", Integral(1)), "x" -> "abc") == Truth.Unknown, "a value not of the column's type")
    assert(Truth.canBeTrue(eval(Not(Opaque), "x" -> "1")))
  }

  test("normalization pushes NOT down exactly") {
    assert(normalized(Not(Compare("x", ">", Integral(5)))) == Compare("x", "<=", Integral(5)))
    assert(normalized(Not(And(Seq(Compare("x", "=", Integral(1)), IsNull("s"))))) ==
      Or(Seq(Compare("x", "!=", Integral(1)), Not(IsNull("s")))))
    assert(normalized(Not(Not(In("x", Seq(Integral(1)))))) == In("x", Seq(Integral(1))))
    assert(normalized(Not(In("x", Seq(Integral(1))))) == Not(In("x", Seq(Integral(1)))))
    assert(normalized(Not(Opaque)) == Opaque)
  }

  test("domains enumerate equalities, lists, bounded ranges and nulls") {
    val between = And(Seq(Compare("x", ">=", Integral(3)), Compare("x", "<=", Integral(5))))
    assert(domainOf(between, "x").finite(64) == ints(3, 4, 5))
    assert(domainOf(Or(Seq(Compare("x", "=", Integral(1)), In("x", Seq(Integral(7), Text("8"))))), "x").finite(64) == ints(1, 7, 8))
    assert(domainOf(Not(Compare("x", ">=", Integral(2))), "x").isInstanceOf[Domain.Interval])
    assert(domainOf(And(Seq(Compare("x", ">", Integral(0)), Not(Compare("x", ">=", Integral(3))))), "x").finite(64) == ints(1, 2))
    assert(domainOf(IsNull("x"), "x").finite(64) == Some(Set(None)))
    assert(domainOf(Compare("s", "=", Text("a")), "s").finite(64) == Some(Set(Some(TextKey("a")))))
    val days = And(Seq(Compare("d", ">", Day(LocalDate.of(2020, 2, 27))), Compare("d", "<", Text("2020-03-02"))))
    assert(domainOf(days, "d").finite(64).map(_.size) == Some(3), "28 Feb, 29 Feb, 1 Mar")
    assert(domainOf(And(Seq(Compare("x", ">", Integral(5)), Compare("x", "<", Integral(3)))), "x").finite(64) == Some(Set.empty))
  }

  test("domains stay Everything wherever values cannot be enumerated") {
    for (p <- Seq(Compare("x", ">", Integral(5)), Compare("x", "!=", Integral(5)), Not(In("x", Seq(Integral(1)))),
                  Not(IsNull("x")), Compare("s", "<", Text("m")), Opaque, Compare("x", "=", Other("timestamp")),
                  Or(Seq(Compare("x", "=", Integral(1)), Compare("y", "=", Integral(2)))),
                  Compare("u", "=", Integral(1))))
      assert(domainOf(p, if (p == Compare("s", "<", Text("m"))) "s" else "x").finite(64).isEmpty, p)
    val wide = And(Seq(Compare("x", ">=", Integral(0)), Compare("x", "<", Integral(1000))))
    assert(domainOf(wide, "x").finite(64).isEmpty, "more values than the limit")
  }

  test("conditions on upper levels narrow a lower level's domain per parent") {
    val p = Or(Seq(And(Seq(Compare("s", "=", Text("a")), Compare("x", "=", Integral(1)))),
                   And(Seq(Compare("s", "=", Text("b")), Compare("x", "=", Integral(2))))))
    assert(domainOf(p, "x", "s" -> "a").finite(64) == ints(1))
    assert(domainOf(p, "x", "s" -> "c").finite(64) == Some(Set.empty))
    assert(domainOf(p, "x").finite(64) == ints(1, 2))
  }
}
