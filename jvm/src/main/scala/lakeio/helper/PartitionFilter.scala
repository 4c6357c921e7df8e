package lakeio.helper

import java.time.LocalDate

import scala.jdk.CollectionConverters._
import scala.util.Try

import com.fasterxml.jackson.databind.JsonNode

/** A literal of the read's filter, typed as lakeio's Python predicate module typed it. */
sealed trait Literal
object Literal {
  final case class Integral(value: BigInt) extends Literal
  final case class Fractional(value: BigDecimal) extends Literal
  final case class Text(value: String) extends Literal
  final case class Day(value: LocalDate) extends Literal

  /** Timestamps, booleans: never compared with a partition value, so never pruned on. */
  final case class Other(kind: String) extends Literal

  /** The key a literal compares as against a column of `columnType`, following Spark's implicit
    * casts (a string literal against an integer or date column is cast to that type); None when
    * the helper cannot tell how Spark would compare them.
    */
  def key(literal: Literal, columnType: ColumnType): Option[Key] = (literal, columnType) match {
    case (Integral(v), ColumnType.IntType | ColumnType.LongType) => Some(NumberKey(v))
    case (Fractional(v), ColumnType.IntType | ColumnType.LongType) if v.isWhole => Some(NumberKey(v.toBigInt))
    case (Text(v), ColumnType.IntType | ColumnType.LongType) =>
      Try(NumberKey(BigInt(java.lang.Long.parseLong(v.trim)))).toOption
    case (Day(v), ColumnType.DateType) => Some(NumberKey(BigInt(v.toEpochDay)))
    case (Text(v), ColumnType.DateType) => Try(NumberKey(BigInt(LocalDate.parse(v.trim).toEpochDay))).toOption
    case (Text(v), ColumnType.StringType) => Some(TextKey(v))
    case _ => None
  }

  def fromJson(node: JsonNode): Literal = {
    val (kind, value) = node.properties().asScala.toList match {
      case entry :: Nil => (entry.getKey, entry.getValue)
      case _ => throw new BadRequest(s"a literal is one {type: value} pair, got $node")
    }
    kind match {
      case "int" => Integral(BigInt(value.asText))
      case "float" => Fractional(BigDecimal(value.asText))
      case "string" => Text(value.asText)
      case "date" => Day(LocalDate.parse(value.asText))
      case other => Other(other)
    }
  }
}

/** The outcomes a predicate may have on a partition, as a set of SQL truth values (true, false,
  * null) in three bits. A partition is read unless `True` is impossible.
  */
object Truth {
  val True = 1
  val False = 2
  val Null = 4
  val Unknown: Int = True | False | Null

  def canBeTrue(outcomes: Int): Boolean = (outcomes & True) != 0

  def of(value: Boolean): Int = if (value) True else False

  def not(a: Int): Int =
    (if ((a & True) != 0) False else 0) | (if ((a & False) != 0) True else 0) | (a & Null)

  def and(a: Int, b: Int): Int = combine(a, b) {
    case (False, _) | (_, False) => False
    case (True, True) => True
    case _ => Null
  }

  def or(a: Int, b: Int): Int = combine(a, b) {
    case (True, _) | (_, True) => True
    case (False, False) => False
    case _ => Null
  }

  private def combine(a: Int, b: Int)(op: (Int, Int) => Int): Int = {
    val values = Seq(True, False, Null)
    (for (x <- values if (a & x) != 0; y <- values if (b & y) != 0) yield op(x, y)).foldLeft(0)(_ | _)
  }
}

/** The values of one partition column that can make a predicate true: everything, a finite set
  * (None is the null partition), or an inclusive interval of ordered keys.
  */
sealed trait Domain {

  /** The finite set of values, if there are at most `limit` of them. */
  def finite(limit: Int): Option[Set[Option[Key]]]
}

object Domain {
  case object Everything extends Domain {
    def finite(limit: Int): Option[Set[Option[Key]]] = None
  }

  final case class Values(values: Set[Option[Key]]) extends Domain {
    def finite(limit: Int): Option[Set[Option[Key]]] = if (values.size <= limit) Some(values) else None
  }

  final case class Interval(low: Option[BigInt], high: Option[BigInt]) extends Domain {
    def finite(limit: Int): Option[Set[Option[Key]]] = (low, high) match {
      case (Some(l), Some(h)) if h < l => Some(Set.empty)
      case (Some(l), Some(h)) if h - l < limit => Some((l to h).map(v => Option[Key](NumberKey(v))).toSet)
      case _ => None
    }
  }

  val Nothing: Domain = Values(Set.empty)

  def intersect(a: Domain, b: Domain): Domain = (a, b) match {
    case (Everything, other) => other
    case (other, Everything) => other
    case (Values(x), Values(y)) => Values(x & y)
    case (Values(x), range: Interval) => Values(x.filter(contains(range, _)))
    case (range: Interval, Values(x)) => Values(x.filter(contains(range, _)))
    case (Interval(l1, h1), Interval(l2, h2)) => Interval(tighter(l1, l2)(_ max _), tighter(h1, h2)(_ min _))
  }

  /** A union is kept exact only where both sides are small finite sets. */
  def union(a: Domain, b: Domain, limit: Int): Domain = (a.finite(limit), b.finite(limit)) match {
    case (Some(x), Some(y)) => Values(x | y)
    case _ => Everything
  }

  private def contains(range: Interval, value: Option[Key]): Boolean = value match {
    case Some(NumberKey(v)) => range.low.forall(_ <= v) && range.high.forall(v <= _)
    case _ => false
  }

  private def tighter(a: Option[BigInt], b: Option[BigInt])(pick: (BigInt, BigInt) => BigInt): Option[BigInt] =
    (a, b) match {
      case (Some(x), Some(y)) => Some(pick(x, y))
      case _ => a.orElse(b)
    }
}

/** The read's filter as the helper sees it. Conditions on data columns, and anything else the
  * Python side cannot describe, arrive as [[Predicate.Opaque]]: always possibly true.
  */
sealed trait Predicate
object Predicate {
  final case class Compare(column: String, op: String, value: Literal) extends Predicate
  final case class In(column: String, values: Seq[Literal]) extends Predicate
  final case class IsNull(column: String) extends Predicate
  final case class Not(operand: Predicate) extends Predicate
  final case class And(operands: Seq[Predicate]) extends Predicate
  final case class Or(operands: Seq[Predicate]) extends Predicate
  case object Opaque extends Predicate

  private val Negated = Map("=" -> "!=", "!=" -> "=", "<" -> ">=", ">=" -> "<", ">" -> "<=", "<=" -> ">")

  def fromJson(node: JsonNode): Predicate = {
    def column = text(node, "column")
    if (node == null || node.isNull) Opaque
    else if (node.has("and")) And(node.get("and").elements().asScala.map(fromJson).toSeq)
    else if (node.has("or")) Or(node.get("or").elements().asScala.map(fromJson).toSeq)
    else if (node.has("not")) Not(fromJson(node.get("not")))
    else if (node.has("opaque")) Opaque
    else if (node.has("in")) In(column, node.get("in").elements().asScala.map(Literal.fromJson).toSeq)
    else if (node.has("isNull")) IsNull(column)
    else if (node.has("op")) {
      val op = text(node, "op")
      if (!Negated.contains(op)) throw new BadRequest(s"unknown comparison $op in $node")
      Compare(column, op, Literal.fromJson(node.get("value")))
    } else throw new BadRequest(s"not a predicate: $node")
  }

  private def text(node: JsonNode, field: String): String =
    Option(node.get(field)).filter(_.isTextual).map(_.asText)
      .getOrElse(throw new BadRequest(s"predicate $node lacks the string field '$field'"))

  /** Negation normal form: NOT pushed down to the atoms. Negating a comparison is exact under
    * SQL's three-valued logic (both sides are null exactly when the value is null).
    */
  def normalized(predicate: Predicate, negate: Boolean = false): Predicate = predicate match {
    case Compare(column, op, value) => if (negate) Compare(column, Negated(op), value) else predicate
    case Not(operand) => normalized(operand, !negate)
    case And(operands) =>
      val parts = operands.map(normalized(_, negate))
      if (negate) Or(parts) else And(parts)
    case Or(operands) =>
      val parts = operands.map(normalized(_, negate))
      if (negate) And(parts) else Or(parts)
    case Opaque => Opaque
    case _ => if (negate) Not(predicate) else predicate
  }

  /** The columns `predicate` names. */
  def columns(predicate: Predicate): Set[String] = predicate match {
    case Compare(column, _, _) => Set(column)
    case In(column, _) => Set(column)
    case IsNull(column) => Set(column)
    case Not(operand) => columns(operand)
    case And(operands) => operands.flatMap(columns).toSet
    case Or(operands) => operands.flatMap(columns).toSet
    case Opaque => Set.empty
  }

  /** The outcomes of `predicate` on a partition whose known columns have these raw values. */
  def evaluate(predicate: Predicate, values: Map[String, Option[String]], types: String => ColumnType): Int =
    predicate match {
      case Compare(column, op, literal) => compare(values.get(column), types(column), op, literal)
      case In(column, literals) =>
        literals.map(compare(values.get(column), types(column), "=", _)).foldLeft(Truth.False)(Truth.or)
      case IsNull(column) => values.get(column).map(v => Truth.of(v.isEmpty)).getOrElse(Truth.Unknown)
      case Not(operand) => Truth.not(evaluate(operand, values, types))
      case And(operands) => operands.map(evaluate(_, values, types)).foldLeft(Truth.True)(Truth.and)
      case Or(operands) => operands.map(evaluate(_, values, types)).foldLeft(Truth.False)(Truth.or)
      case Opaque => Truth.Unknown
    }

  private def compare(value: Option[Option[String]], columnType: ColumnType, op: String, literal: Literal): Int =
    value match {
      case None => Truth.Unknown // a column of a deeper level: not known yet
      case Some(None) => Truth.Null
      case Some(Some(raw)) =>
        val order = for {
          left <- PartitionValues.key(raw, columnType)
          right <- Literal.key(literal, columnType)
          order <- PartitionValues.compare(left, right)
        } yield order
        order.map(c => Truth.of(op match {
          case "=" => c == 0
          case "!=" => c != 0
          case "<" => c < 0
          case "<=" => c <= 0
          case ">" => c > 0
          case _ => c >= 0
        })).getOrElse(Truth.Unknown)
    }

  /** The values of `column` outside of which a normalized `predicate` cannot be true, given the
    * raw values of the columns above it. Sound rather than tight: anything unclear is Everything.
    */
  def domain(predicate: Predicate, column: String, columnType: ColumnType,
             known: Map[String, Option[String]], types: String => ColumnType, limit: Int): Domain = {
    def of(p: Predicate): Domain = p match {
      case Compare(`column`, op, literal) =>
        Literal.key(literal, columnType) match {
          case Some(key) => op match {
            case "=" => Domain.Values(Set(Some(key)))
            case "!=" => Domain.Everything
            case _ => key match {
              case NumberKey(v) => op match {
                case "<" => Domain.Interval(None, Some(v - 1))
                case "<=" => Domain.Interval(None, Some(v))
                case ">" => Domain.Interval(Some(v + 1), None)
                case _ => Domain.Interval(Some(v), None)
              }
              case TextKey(_) => Domain.Everything
            }
          }
          case None => Domain.Everything
        }
      case In(`column`, literals) =>
        val keys = literals.map(Literal.key(_, columnType))
        if (keys.forall(_.isDefined)) Domain.Values(keys.toSet) else Domain.Everything
      case IsNull(`column`) => Domain.Values(Set(None))
      case And(operands) => operands.map(of).foldLeft(Domain.Everything: Domain)(Domain.intersect)
      case Or(operands) => operands.map(of).foldLeft(Domain.Nothing)(Domain.union(_, _, limit))
      case atom =>
        // An atom on a column above this level is decided already; any other is unknown here.
        val outcomes = evaluate(atom, known, types)
        if (Truth.canBeTrue(outcomes)) Domain.Everything else Domain.Nothing
    }
    of(predicate)
  }
}

/** A request the helper cannot act on: a programming error on the Python side. */
final class BadRequest(message: String) extends IllegalArgumentException(message)
