package lakeio.helper

import java.io.FileNotFoundException
import java.nio.file.{Files, Path => JPath, Paths}
import java.time.LocalDate

import scala.jdk.CollectionConverters._
import scala.util.Random

import com.fasterxml.jackson.databind.ObjectMapper
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileSystem, Path}
import org.scalatest.funsuite.AnyFunSuite

class PartitionListerSuite extends AnyFunSuite {
  import Literal._
  import Predicate._

  private val fs = FileSystem.getLocal(new Configuration())

  /** A table whose partitions are these relative directories, each holding one (empty) data file. */
  private def table(partitions: Seq[String]): Path = {
    val root = Files.createTempDirectory("lakeio-lister")
    for (partition <- partitions) {
      val dir = root.resolve(partition)
      Files.createDirectories(dir)
      Files.createFile(dir.resolve("part-00000.parquet"))
    }
    Files.createFile(root.resolve("_SUCCESS"))
    new Path(root.toUri)
  }

  private def days(n: Int): Seq[String] = (0 until n).map(i => s"dt=${LocalDate.of(2000, 1, 1).plusDays(i)}")
  private def day(offset: Int): Literal = Day(LocalDate.of(2000, 1, 1).plusDays(offset))
  private def select(root: Path, columns: Seq[String], p: Predicate, options: ListingOptions = ListingOptions(),
                     withFiles: Boolean = false) =
    new PartitionLister(fs, root, columns, p, options).select(withFiles)
  private def names(selection: Selection, root: Path): Seq[String] =
    selection.paths.map(p => fs.makeQualified(root).toUri.relativize(p.toUri).getPath.stripSuffix("/")).sorted

  test("a wide level is not listed: matching directories are constructed and probed") {
    val tenDays = And(Seq(Compare("dt", ">=", day(100)), Compare("dt", "<=", day(109))))
    val small = select(table(days(300)), Seq("dt"), tenDays)
    val large = table(days(3000))
    val big = select(large, Seq("dt"), tenDays)
    assert(big.paths.size == 10 && small.paths.size == 10)
    assert(names(big, large).head == "dt=2000-04-10")
    assert(big.steps.head.startsWith("dt: 10 constructed"), big.steps)
    assert(big.requests == small.requests, "the work follows the matches, not the table")
    assert(big.requests == 1 + 10, "one sample, ten probes")
    assert(big.total.isEmpty && big.types == Map("dt" -> ColumnType.DateType))
  }

  test("asked for files, each selected partition comes with the files a Spark read reads, by either route") {
    val root = table(days(150))
    for (day <- Seq("dt=2000-01-03", "dt=2000-01-04")) {
      val dir = Paths.get(new Path(root, day).toUri)
      Files.write(dir.resolve("part-00001.parquet"), Array[Byte](1, 2, 3))
      for (hidden <- Seq("_SUCCESS", ".part-00001.parquet.crc", "part-00002.parquet._COPYING_"))
        Files.write(dir.resolve(hidden), Array[Byte](1))
    }
    val twoDays = In("dt", Seq(day(2), day(3), day(500)))
    for (options <- Seq(ListingOptions(), ListingOptions(sampleSize = 1000))) { // constructed, then listed
      val selection = select(root, Seq("dt"), twoDays, options, withFiles = true)
      assert(selection.partitions.map(_.path.getName) == Seq("dt=2000-01-03", "dt=2000-01-04"), selection.steps)
      // The empty part-00000 files are skipped, as Spark's file index skips empty files.
      assert(selection.partitions.forall(_.files.get.map(f => (f.getPath.getName, f.getLen)) == Seq(("part-00001.parquet", 3))))
      assert(selection.partitions.map(_.values) == Seq(Map("dt" -> Some("2000-01-03")), Map("dt" -> Some("2000-01-04"))))
    }
    assert(select(root, Seq("dt"), twoDays).partitions.forall(_.files.isEmpty), "no files unless asked")
  }

  test("a narrow level is listed, and a complete walk knows the table's size") {
    val root = table((1 to 12).map(m => s"month=$m"))
    val selection = select(root, Seq("month"), Compare("month", ">", Integral(9)))
    assert(names(selection, root) == Seq("month=10", "month=11", "month=12"))
    assert(selection.total == Some(12) && selection.steps.head.contains("listed"))
    assert(select(root, Seq("month"), Opaque).paths.size == 12)
  }

  test("partitions that do not exist are not returned") {
    val root = table(days(300))
    val selection = select(root, Seq("dt"), In("dt", Seq(day(5), day(400), Text("1999-01-01"))))
    assert(names(selection, root) == Seq("dt=2000-01-06"))
  }

  test("the null partition answers IS NULL, never a comparison") {
    val root = table(Seq("x=1", "x=5", "x=__HIVE_DEFAULT_PARTITION__"))
    assert(names(select(root, Seq("x"), IsNull("x")), root) == Seq("x=__HIVE_DEFAULT_PARTITION__"))
    assert(names(select(root, Seq("x"), Not(Compare("x", "=", Integral(5)))), root) == Seq("x=1"))
    assert(names(select(root, Seq("x"), Or(Seq(IsNull("x"), Compare("x", "=", Integral(5))))), root) ==
      Seq("x=5", "x=__HIVE_DEFAULT_PARTITION__"))
    val wide = table((1 to 150).map(i => s"x=$i") :+ "x=__HIVE_DEFAULT_PARTITION__")
    val nulls = select(wide, Seq("x"), IsNull("x"))
    assert(names(nulls, wide) == Seq("x=__HIVE_DEFAULT_PARTITION__") && nulls.steps.head.contains("constructed"))
  }

  test("a column seen only as nulls is typed from values elsewhere in the table") {
    val root = table(Seq("a=1/b=__HIVE_DEFAULT_PARTITION__", "a=2/b=__HIVE_DEFAULT_PARTITION__", "a=3/b=2020-01-01"))
    val selection = select(root, Seq("a", "b"), Compare("a", "=", Integral(1)))
    assert(names(selection, root) == Seq("a=1/b=__HIVE_DEFAULT_PARTITION__"))
    assert(selection.types == Map("a" -> ColumnType.IntType, "b" -> ColumnType.DateType))
    val allNull = table(Seq("a=1/b=__HIVE_DEFAULT_PARTITION__"))
    assert(select(allNull, Seq("a", "b"), Opaque).types("b") == ColumnType.Unknown)
  }

  test("escaped values are found whichever writer escaped them") {
    val root = table(Seq("s=a b", "s=a%20b%2Fc", "s=x%3Dy", "s=plain", "s=%C3%A9"))
    val found = select(root, Seq("s"), In("s", Seq(Text("a b"), Text("a b/c"), Text("x=y"))))
    assert(names(found, root).size == 3)
    val range = And(Seq(Compare("s", ">", Text("p")), Compare("s", "<", Text("z"))))
    assert(names(select(root, Seq("s"), range), root) == Seq("s=plain", "s=x%3Dy"))
    // pyarrow's UTF-8 escapes of é read as é (as lakeio.partitions reads them), not Spark's "Ã©".
    assert(names(select(root, Seq("s"), Compare("s", "=", Text("\u00e9"))), root) == Seq("s=%C3%A9"))
    assert(names(select(root, Seq("s"), Compare("s", "=", Text("\u00c3\u00a9"))), root).isEmpty)
  }

  test("zero-padded names are listed, not constructed, so none is missed") {
    val root = table((1 to 20).map(m => f"m=$m%02d"))
    val selection = select(root, Seq("m"), In("m", Seq(Integral(1), Integral(9), Integral(15))), ListingOptions(sampleSize = 5))
    assert(names(selection, root) == Seq("m=01", "m=09", "m=15"))
    assert(selection.steps.head.contains("listed"))
  }

  test("levels are walked in order, each by the cheaper route") {
    val partitions = for (y <- 2019 to 2020; m <- 1 to 12; d <- 1 to 28) yield s"year=$y/month=$m/day=$d"
    val root = table(partitions)
    val p = And(Seq(Compare("year", "=", Integral(2020)), In("month", Seq(Integral(2), Integral(3))),
                    Compare("day", "<=", Integral(2)), Opaque))
    val selection = select(root, Seq("year", "month", "day"), p, ListingOptions(sampleSize = 10))
    assert(names(selection, root) == Seq("year=2020/month=2/day=1", "year=2020/month=2/day=2",
                                         "year=2020/month=3/day=1", "year=2020/month=3/day=2"))
    assert(selection.steps.size == 3 && selection.steps(1).contains("constructed"), selection.steps)
  }

  test("a directory that is not the expected partition column is a clear error") {
    val root = table(Seq("day=1", "day=2"))
    val error = intercept[LayoutError](select(root, Seq("dt"), Opaque))
    assert(error.getMessage.contains("day=1") || error.getMessage.contains("day=2"))
    assert(error.getMessage.contains("'dt='"))
  }

  test("a missing root and a file root are clear errors naming the path") {
    val missing = new Path(Files.createTempDirectory("lakeio-missing").resolve("nothing-here").toUri)
    assert(intercept[FileNotFoundException](select(missing, Seq("dt"), Opaque)).getMessage.contains("nothing-here"))
    val file = Files.createTempFile("lakeio", ".parquet")
    assert(intercept[LayoutError](select(new Path(file.toUri), Seq("dt"), Opaque)).getMessage.contains(file.getFileName.toString))
  }

  test("an empty table selects nothing and has no schema to offer") {
    val empty = select(table(Nil), Seq("dt"), Compare("dt", "=", day(1)))
    assert(empty.paths.isEmpty && empty.schemaPath.isEmpty && empty.total == Some(0))
  }

  test("when nothing matches, one existing partition is named for the schema") {
    val root = table(Seq("a=1/b=x", "a=2/b=y"))
    val none = select(root, Seq("a", "b"), Compare("a", "=", Integral(3)))
    assert(none.paths.isEmpty && none.schemaPath.exists(p => fs.exists(p) && p.toString.contains("b=")))
  }

  test("the JSON entry point answers paths, types and errors") {
    val mapper = new ObjectMapper()
    val root = table((1 to 3).map(i => s"k=$i"))
    val answer = mapper.readTree(Helper.selectPartitions(
      s"""{"root": "$root", "columns": ["k"], "predicate": {"column": "k", "op": ">", "value": {"int": "1"}}, "threads": 2}"""))
    assert(answer.get("paths").size == 2 && answer.get("types").get("k").asText == "int")
    assert(answer.get("total").asInt == 3 && answer.get("requests").asInt == 1, "one listing of a narrow level")
    val listed = mapper.readTree(Helper.selectPartitions(s"""{"root": "$root", "columns": ["k"], "predicate": null, "files": true}"""))
    val partitions = listed.get("partitions").elements().asScala.toSeq
    assert(partitions.map(_.get("values").get("k")).map(v => (v.isInt, v.asInt)).toSet == Set((true, 1), (true, 2), (true, 3)))
    assert(partitions.forall(_.get("files").isEmpty), "the table's files are empty, so none is read")
    assert(answer.get("partitions") == null, "no partitions unless files are asked for")
    val missing = mapper.readTree(Helper.selectPartitions(s"""{"root": "$root/nope", "columns": ["k"], "predicate": null}"""))
    assert(missing.get("error").asText == "not_found" && missing.get("message").asText.contains("nope"))
    val bad = mapper.readTree(Helper.selectPartitions("""{"columns": ["k"]}"""))
    assert(bad.get("error").asText == "request" && bad.get("message").asText.contains("root"))
    assert(mapper.readTree(Helper.selectPartitions("not json")).get("error").asText == "request")
  }

  test("property: on random layouts and predicates, no partition the predicate can select is left out") {
    val random = new Random(20240605)
    var pruned = 0
    for (round <- 1 to 60) {
      val layout = RandomLayout(random)
      val root = table(layout.partitions.map(layout.directory))
      val types = layout.columns.map(c => c -> ColumnType.infer(layout.partitions.map(_(c)))).toMap
      for (_ <- 1 to 5) {
        val p = layout.predicate(random, depth = 3)
        val options = ListingOptions(threads = 3, sampleSize = 1 + random.nextInt(8), maxCandidates = 1 + random.nextInt(40))
        val selection = select(root, layout.columns, p, options)
        val selected = names(selection, root).toSet
        for (partition <- layout.partitions) {
          val exact = evaluate(normalized(p), partition, types)
          if (Truth.canBeTrue(exact))
            assert(selected.contains(layout.directory(partition)), s"round $round: $p on $partition with $options")
        }
        assert(selected.subsetOf(layout.partitions.map(layout.directory).toSet))
        if (selected.size < layout.partitions.size) pruned += 1
      }
    }
    assert(pruned > 100, "most of the 300 cases prune something, so the property is not vacuous")
  }
}

/** A random hive layout: one to three columns of int, date or string values, some null. */
final case class RandomLayout(columns: Seq[String], kinds: Map[String, String], partitions: Seq[Map[String, Option[String]]]) {
  import Literal._
  import Predicate._

  def directory(partition: Map[String, Option[String]]): String =
    columns.map(c => PartitionValues.directoryName(c, partition(c))).mkString("/")

  def predicate(random: Random, depth: Int): Predicate = random.nextInt(if (depth == 0) 4 else 8) match {
    case 0 | 1 => val c = pick(random, columns); Compare(c, pick(random, Seq("=", "!=", "<", "<=", ">", ">=")), literal(random, c))
    case 2 => val c = pick(random, columns); In(c, Seq.fill(1 + random.nextInt(3))(literal(random, c)))
    case 3 => if (random.nextBoolean()) IsNull(pick(random, columns)) else Opaque
    case 4 | 5 => And(Seq.fill(2)(predicate(random, depth - 1)))
    case 6 => Or(Seq.fill(2)(predicate(random, depth - 1)))
    case _ => Not(predicate(random, depth - 1))
  }

  private def literal(random: Random, column: String): Literal = {
    val value = RandomLayout.value(random, kinds(column))
    kinds(column) match {
      case "int" => if (random.nextInt(4) == 0) Text(value) else Integral(BigInt(value))
      case "date" => if (random.nextInt(4) == 0) Text(value) else Day(LocalDate.parse(value))
      case _ => Text(value)
    }
  }

  private def pick[A](random: Random, items: Seq[A]): A = items(random.nextInt(items.size))
}

object RandomLayout {
  def apply(random: Random): RandomLayout = {
    val columns = Seq("a", "b", "c").take(1 + random.nextInt(3))
    val kinds = columns.map(c => c -> Seq("int", "date", "string")(random.nextInt(3))).toMap
    val partitions = Seq.fill(1 + random.nextInt(40)) {
      columns.map(c => c -> (if (random.nextInt(8) == 0) None else Some(value(random, kinds(c))))).toMap
    }.distinct
    RandomLayout(columns, kinds, partitions)
  }

  def value(random: Random, kind: String): String = kind match {
    case "int" => (random.nextInt(30) - 5).toString
    case "date" => LocalDate.of(2020, 2, 20).plusDays(random.nextInt(20)).toString
    case _ => Seq("a", "b", "b c", "x/y", "é", "z=1", "m-1")(random.nextInt(7))
  }
}
