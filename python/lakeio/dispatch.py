"""Which engine runs a read or write, and why: a pure function, so the choice is testable."""

from __future__ import annotations

from typing import Any

from lakeio.engines import is_spark_dataframe


def explicit_engine(requested: str | None, bound: str | None, environment: str) -> tuple[str, str] | None:
    """The engine named by the call's ``engine=``, else the dataset's binding, else the environment;
    None when all say ``auto`` (or nothing).

    Example:
        >>> explicit_engine(None, "spark", "auto")
        ('spark', 'binding: engine=spark')
    """
    for source, choice in (("argument", requested), ("binding", bound), ("environment", environment)):
        if choice and choice != "auto":
            return choice, f"{source}: engine={choice}"
    return None


def choose_engine(requested: str | None, bound: str | None, environment: str, data: Any = None, *,
                  scan_bytes: int | None = None, arrow_max_bytes: int | None = None,
                  spark_installed: bool = True) -> tuple[str, str]:
    """Picks ``"arrow"`` or ``"spark"`` and says why.

    Precedence: an explicit engine (see :func:`explicit_engine`); then, for ``auto``, Spark data
    goes to Spark and other data to be written stays in-process (Arrow); a read goes to Arrow when
    its pruned scan (``scan_bytes``, the files left after partition pruning) is at most
    ``arrow_max_bytes``, else to Spark, if pyspark is installed.

    Example:
        >>> choose_engine(None, None, "auto")
        ('arrow', 'auto: not Spark data, in-process')
        >>> choose_engine(None, None, "auto", scan_bytes=5 * 2**30, arrow_max_bytes=2**30)
        ('spark', 'auto: pruned scan 5.0 GiB > arrow_max_bytes 1.0 GiB')
    """
    explicit = explicit_engine(requested, bound, environment)
    if explicit is not None:
        return explicit
    if data is not None and is_spark_dataframe(data):
        return "spark", "auto: the data is a Spark DataFrame"
    if scan_bytes is None or arrow_max_bytes is None:
        return "arrow", "auto: not Spark data, in-process"
    size, limit = readable_size(scan_bytes), readable_size(arrow_max_bytes)
    if scan_bytes <= arrow_max_bytes:
        return "arrow", f"auto: pruned scan {size} <= arrow_max_bytes {limit}"
    if not spark_installed:
        return "arrow", f"auto: pruned scan {size} > arrow_max_bytes {limit}, but pyspark is not installed"
    return "spark", f"auto: pruned scan {size} > arrow_max_bytes {limit}"


def readable_size(size: float) -> str:
    """Bytes as a person reads them: the largest unit of which there is at least a tenth.

    Example:
        >>> readable_size(5 * 2**30), readable_size(40 * 2**20), readable_size(3_000), readable_size(12)
        ('5.0 GiB', '40.0 MiB', '2.9 KiB', '12 B')
    """
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale / 10:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"
