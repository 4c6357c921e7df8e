package lakeio.helper

import org.scalatest.funsuite.AnyFunSuite

class AssertionsSuite extends AnyFunSuite {

  test("bounds include their limit, strict ones do not") {
    assert(Assertions.atLeast(0.9)(0.9) && Assertions.atLeast(0.9)(1.0) && !Assertions.atLeast(0.9)(0.89))
    assert(Assertions.atMost(3)(3) && !Assertions.atMost(3)(3.5))
    assert(Assertions.above(0)(0.1) && !Assertions.above(0)(0))
    assert(Assertions.below(0)(-0.1) && !Assertions.below(0)(0))
    assert(Assertions.between(1, 5)(1) && Assertions.between(1, 5)(5) && !Assertions.between(1, 5)(5.5))
    assert(Assertions.rowsBetween(1, 3)(3L) && !Assertions.rowsBetween(1, 3)(4L) && !Assertions.rowsBetween(1, 3)(0L))
  }

  test("NaN passes no bound, as Deequ's metric of a NaN column should not") {
    val nan = Double.NaN
    assert(!Assertions.atLeast(0)(nan) && !Assertions.atMost(0)(nan) && !Assertions.between(0, 1)(nan))
  }

  test("they are the Function1 Deequ's Check methods take") {
    val erased: Function1[Any, Any] = Assertions.atLeast(1).asInstanceOf[Function1[Any, Any]]
    assert(erased(java.lang.Double.valueOf(2.0)) == true)
    val rows: Function1[Any, Any] = Assertions.rowsBetween(0, Long.MaxValue).asInstanceOf[Function1[Any, Any]]
    assert(rows(java.lang.Long.valueOf(7L)) == true)
  }
}
