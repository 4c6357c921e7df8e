package lakeio.helper

import org.scalatest.funsuite.AnyFunSuite

class PartitionValuesSuite extends AnyFunSuite {
  import ColumnType._

  private def infer(values: String*): ColumnType = ColumnType.infer(values.map(v => Option(v)))

  test("column types are inferred as Spark's partition discovery infers them") {
    assert(infer("1", "-2", "01") == IntType)
    assert(infer("1", "3000000000") == LongType)
    assert(infer("2020-01-01", "1999-12-31") == DateType)
    assert(infer("a", "1") == StringType)
    assert(infer("2020-01-01", "7") == StringType)
    assert(infer("1", null) == IntType, "the null partition does not change the type")
  }

  test("types the helper does not compare stay unknown, so nothing is pruned on them") {
    assert(infer("1.5") == Unknown)
    assert(infer("1", "2.5") == Unknown)
    assert(infer("2020-01-01 10:00:00") == Unknown)
    assert(infer(null) == Unknown)
    assert(infer() == Unknown)
    assert(Unknown.sparkName.isEmpty)
    assert(Seq(IntType, LongType, DateType, StringType).map(_.sparkName.get) == Seq("int", "bigint", "date", "string"))
  }

  test("directory names escape and unescape as Spark writes and reads them") {
    for (value <- Seq("a b", "c/d", "x=y", "50%", "é", "[*]", "tab\there")) {
      val name = PartitionValues.directoryName("col", Some(value))
      assert(name.indexOf('/') < 0 && name.count(_ == '=') == 1, name)
      assert(PartitionValues.parse(name) == Some("col" -> Some(value)), name)
    }
    assert(PartitionValues.directoryName("c=1", Some("v")) == "c%3D1=v")
    assert(PartitionValues.parse("c%3D1=v") == Some("c=1" -> Some("v")))
    assert(PartitionValues.directoryName("col", None) == "col=__HIVE_DEFAULT_PARTITION__")
    assert(PartitionValues.parse("col=__HIVE_DEFAULT_PARTITION__") == Some("col" -> None))
    assert(PartitionValues.parse("a%20b=c%20d") == Some("a b" -> Some("c d")), "pyarrow's percent-encoding")
    assert(PartitionValues.parse("city=Z%C3%BCrich%20%E6%97%A5") == Some("city" -> Some("Zürich 日")),
           "pyarrow's spelling of non-ASCII: UTF-8 escapes")
    assert(PartitionValues.parse("k=%FF%41") == Some("k" -> Some("\u00ffA")), "no UTF-8: one character per byte, as Spark")
    assert(PartitionValues.parse("part-0.parquet").isEmpty)
    assert(PartitionValues.parse("=x").isEmpty)
  }

  test("hidden names are Spark's: dot or underscore prefixed, unless an underscore name is a partition") {
    assert(PartitionValues.isHidden("_SUCCESS") && PartitionValues.isHidden(".part.crc") && PartitionValues.isHidden("_temporary"))
    assert(!PartitionValues.isHidden("_col=1") && !PartitionValues.isHidden("col=_x"))
  }

  test("only names every writer spells alike can be constructed") {
    assert(PartitionValues.isCanonical("12", IntType) && PartitionValues.isCanonical("-3", LongType))
    assert(!PartitionValues.isCanonical("01", IntType) && !PartitionValues.isCanonical("+1", IntType))
    assert(PartitionValues.isCanonical("2020-02-29", DateType) && !PartitionValues.isCanonical("2020-2-29", DateType))
    assert(PartitionValues.isCanonical("abc-1_2.x", StringType))
    assert(!PartitionValues.isCanonical("a b", StringType) && !PartitionValues.isCanonical("é", StringType))
    assert(!PartitionValues.isCanonical("", StringType) && !PartitionValues.isCanonical("1", Unknown))
  }

  test("keys render back to their canonical spelling") {
    assert(PartitionValues.key("2020-03-01", DateType).map(PartitionValues.render(_, DateType)) == Some("2020-03-01"))
    assert(PartitionValues.key("007", IntType).map(PartitionValues.render(_, IntType)) == Some("7"))
    assert(PartitionValues.key("x", IntType).isEmpty && PartitionValues.key("x", DateType).isEmpty)
  }

  test("strings compare by UTF-8 bytes, as Spark compares them, not by UTF-16 units") {
    val emoji = new String(Character.toChars(0x1F600))
    val halfwidth = "\uFF61"
    assert(emoji.compareTo(halfwidth) < 0, "UTF-16 order puts the surrogate pair first")
    assert(PartitionValues.compare(TextKey(emoji), TextKey(halfwidth)).exists(_ > 0))
    assert(PartitionValues.compare(NumberKey(2), NumberKey(10)).exists(_ < 0))
    assert(PartitionValues.compare(NumberKey(2), TextKey("2")).isEmpty)
  }
}
