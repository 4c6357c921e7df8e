package lakeio.helper

/** Assertions for Deequ's constraints (`Double => Boolean`), built in the JVM so that Deequ never
  * calls back into Python: a Python lambda handed to pydeequ starts py4j's callback server.
  */
object Assertions {

  /** The value is at least `bound`. */
  def atLeast(bound: Double): Double => Boolean = value => value >= bound

  /** The value is at most `bound`. */
  def atMost(bound: Double): Double => Boolean = value => value <= bound

  /** The value is above `bound`. */
  def above(bound: Double): Double => Boolean = value => value > bound

  /** The value is below `bound`. */
  def below(bound: Double): Double => Boolean = value => value < bound

  /** The value is in `[low, high]`. */
  def between(low: Double, high: Double): Double => Boolean = value => value >= low && value <= high

  /** A row count in `[low, high]` (Deequ's `hasSize` asserts on a `Long`). */
  def rowsBetween(low: Long, high: Long): Long => Boolean = rows => rows >= low && rows <= high
}
