"""Which engine runs a read or write, and why: a pure function, so the choice is testable."""

from __future__ import annotations

from typing import Any

from lakeio.engines import is_spark_dataframe


def choose_engine(requested: str | None, bound: str | None, environment: str, data: Any = None) -> tuple[str, str]:
    """Picks ``"arrow"`` or ``"spark"`` and says why.

    Precedence: the call's ``engine=``, then the dataset's binding, then the environment's setting;
    ``auto`` sends Spark data to Spark and everything else to the in-process Arrow engine.

    Example:
        >>> choose_engine(None, "spark", "auto")
        ('spark', 'binding: engine=spark')
        >>> choose_engine(None, None, "auto")
        ('arrow', 'auto: not Spark data, in-process')
    """
    for source, choice in (("argument", requested), ("binding", bound), ("environment", environment)):
        if choice and choice != "auto":
            return choice, f"{source}: engine={choice}"
    if data is not None and is_spark_dataframe(data):
        return "spark", "auto: the data is a Spark DataFrame"
    return "arrow", "auto: not Spark data, in-process"
