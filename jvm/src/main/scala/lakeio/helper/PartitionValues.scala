package lakeio.helper

import java.nio.ByteBuffer
import java.nio.charset.StandardCharsets.UTF_8
import java.time.LocalDate

import scala.util.Try
import scala.util.matching.Regex

import org.apache.hadoop.fs.FileStatus
import org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils

/** The type the helper gives a partition column, inferred from directory names the way Spark's
  * partition discovery infers it, restricted to the types the helper can compare.
  */
sealed trait ColumnType {

  /** Spark's simple type name, or None where Spark's own inference should stand. */
  def sparkName: Option[String]
}

object ColumnType {
  case object IntType extends ColumnType { val sparkName: Option[String] = Some("int") }
  case object LongType extends ColumnType { val sparkName: Option[String] = Some("bigint") }
  case object DateType extends ColumnType { val sparkName: Option[String] = Some("date") }
  case object StringType extends ColumnType { val sparkName: Option[String] = Some("string") }

  /** Nothing but nulls seen, or values Spark types in ways the helper does not compare (decimals,
    * doubles, timestamps): predicates on the column are never evaluated, so nothing is pruned by it.
    */
  case object Unknown extends ColumnType { val sparkName: Option[String] = None }

  /** The type of a column from the raw (unescaped) values seen; None is the null partition. */
  def infer(values: Iterable[Option[String]]): ColumnType = {
    val kinds = values.flatten.map(kindOf).toSet
    if (kinds.isEmpty || kinds.contains(Unknown)) Unknown
    else if (kinds == Set(IntType)) IntType
    else if (kinds.subsetOf(Set(IntType, LongType))) LongType
    else if (kinds == Set(DateType)) DateType
    else StringType // Spark's inference falls back to string for any other mix
  }

  // Spark's order: integral, then decimal/double, then timestamp, then date, then string.
  private def kindOf(raw: String): ColumnType =
    if (Try(Integer.parseInt(raw)).isSuccess) IntType
    else if (Try(java.lang.Long.parseLong(raw)).isSuccess) LongType
    else if (Try(new java.math.BigDecimal(raw)).isSuccess || Try(raw.toDouble).isSuccess) Unknown
    else if (Try(LocalDate.parse(raw)).isSuccess) DateType
    else if (raw.matches("""\d{4}-\d{1,2}-\d{1,2}.*""")) Unknown // may be a timestamp to Spark
    else StringType
}

/** A comparable key of one partition value: integral and date values are ordered numbers
  * (a date is its epoch day), strings are strings.
  */
sealed trait Key
final case class NumberKey(value: BigInt) extends Key
final case class TextKey(value: String) extends Key

/** Directory names of hive-style partitions: `column=value`, escaped the way Spark escapes them. */
object PartitionValues {
  val NullName: String = ExternalCatalogUtils.DEFAULT_PARTITION_NAME

  /** The escaped directory name of `column=value`; a None value is the null partition. */
  def directoryName(column: String, value: Option[String]): String =
    ExternalCatalogUtils.escapePathName(column) + "=" + value.map(ExternalCatalogUtils.escapePathName).getOrElse(NullName)

  /** Splits a directory name into its unescaped column and raw value (None for the null partition). */
  def parse(name: String): Option[(String, Option[String])] = {
    val at = name.indexOf('=')
    if (at <= 0) None
    else {
      val column = unescape(name.substring(0, at))
      val value = name.substring(at + 1)
      Some(column -> (if (value == NullName) None else Some(unescape(value))))
    }
  }

  private val EscapeRun = "(?:%[0-9A-Fa-f]{2})+".r

  /** The text a directory name spells, as lakeio.partitions.unescape reads it: `%XX` decoded, a run
    * of escapes that is UTF-8 (pyarrow's spelling of non-ASCII) as that text, any other escape as
    * one character per byte (Spark's own reading, which would make `Z%C3%BCrich` "ZÃ¼rich").
    */
  def unescape(text: String): String =
    if (text.indexOf('%') < 0) text
    else EscapeRun.replaceAllIn(text, run => Regex.quoteReplacement(decoded(run.matched)))

  private def decoded(run: String): String = {
    val bytes = run.grouped(3).map(escape => Integer.parseInt(escape.substring(1), 16).toByte).toArray
    Try(UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString)
      .getOrElse(bytes.map(b => (b & 0xff).toChar).mkString)
  }

  /** Names Spark's file index skips: hidden files and `_`-prefixed names that are not partitions. */
  def isHidden(name: String): Boolean =
    name.startsWith(".") || (name.startsWith("_") && !name.contains("="))

  /** True for an entry a Spark read of its directory reads: a file that is not hidden, empty or still
    * being copied, as Spark's file index keeps them.
    */
  def isDataFile(status: FileStatus): Boolean = {
    val name = status.getPath.getName
    status.isFile && status.getLen > 0 && !isHidden(name) && !name.endsWith("._COPYING_")
  }

  /** The key of a raw value under a column type, when the value parses as that type. */
  def key(raw: String, columnType: ColumnType): Option[Key] = columnType match {
    case ColumnType.IntType | ColumnType.LongType => Try(NumberKey(BigInt(java.lang.Long.parseLong(raw)))).toOption
    case ColumnType.DateType => Try(NumberKey(BigInt(LocalDate.parse(raw).toEpochDay))).toOption
    case ColumnType.StringType => Some(TextKey(raw))
    case ColumnType.Unknown => None
  }

  /** The raw value a writer produces for a key: what a constructed candidate directory is named. */
  def render(key: Key, columnType: ColumnType): String = (key, columnType) match {
    case (NumberKey(day), ColumnType.DateType) => LocalDate.ofEpochDay(day.toLong).toString
    case (NumberKey(number), _) => number.toString
    case (TextKey(text), _) => text
  }

  /** True when every writer names this raw value's directory the same way, so a directory for it
    * can be constructed instead of found by listing: integers without sign or leading zeros, ISO
    * dates, and strings of characters no writer escapes (Spark and pyarrow escape different sets).
    */
  def isCanonical(raw: String, columnType: ColumnType): Boolean = columnType match {
    case ColumnType.IntType | ColumnType.LongType | ColumnType.DateType =>
      key(raw, columnType).exists(k => render(k, columnType) == raw)
    case ColumnType.StringType => raw.nonEmpty && raw.forall(c => c.isLetterOrDigit && c < 128 || "-_.".indexOf(c) >= 0)
    case ColumnType.Unknown => false
  }

  /** Compares keys as Spark compares the typed values: numbers by value, strings by UTF-8 bytes. */
  def compare(a: Key, b: Key): Option[Int] = (a, b) match {
    case (NumberKey(x), NumberKey(y)) => Some(x.compare(y))
    case (TextKey(x), TextKey(y)) => Some(java.util.Arrays.compareUnsigned(x.getBytes(UTF_8), y.getBytes(UTF_8)))
    case _ => None
  }
}
