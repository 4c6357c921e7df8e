"""The validation report: every check's outcome and every metric, collected before anything is raised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One check on one column (or the table, when ``column`` is None).

    ``observed`` is what the data showed (failing rows, null fraction, duplicate keys, a type) and
    ``threshold`` the bound it was held to; both are plain JSON values. ``deequ`` is what Deequ's
    own constraint said of the check when the Deequ backend ran it (``"Success: <constraint>"`` or
    ``"Failure: <constraint>: <message>"``); ``passed`` is lakeio's verdict, which stands.
    """

    check: str
    column: str | None
    severity: str
    passed: bool
    observed: Any
    threshold: Any
    message: str
    deequ: str | None = None


@dataclass(frozen=True)
class MetricValue:
    """One metric of one column; ``counts_per_label`` gives one value per ``label``."""

    column: str | None
    metric: str
    value: Any
    label: str | None = None


@dataclass(frozen=True)
class SkippedCheck:
    """A check the data at hand cannot answer (a column not read, an aggregate on a filtered read)."""

    check: str
    column: str | None
    reason: str


@dataclass(frozen=True)
class ValidationReport:
    """What one validation run found.

    Example:
        >>> report = ValidationReport("flights", "local", "write", "arrow", "0f3c", "conf/schemas/flights.yaml",
        ...     rows=2, seconds=0.01, filtered=False,
        ...     results=(CheckResult("not_null", "carrier", "error", False, 1, 0, "1 null value"),),
        ...     metrics=(), skipped=())
        >>> report.passed, [r.column for r in report.errors]
        (False, ['carrier'])
    """

    dataset: str
    env: str
    operation: str
    backend: str
    run_id: str
    contract: str
    rows: int
    seconds: float
    filtered: bool
    results: tuple[CheckResult, ...]
    metrics: tuple[MetricValue, ...]
    skipped: tuple[SkippedCheck, ...]
    #: Rows of the write sent to its quarantine dataset (``rows`` counts those written).
    quarantined: int = 0

    @property
    def errors(self) -> list[CheckResult]:
        """Failed checks of severity error: any of them makes the data unacceptable."""
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed checks of severity warning: logged, not raised."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    @property
    def passed(self) -> bool:
        """True when no error-level check failed."""
        return not self.errors

    def metric(self, column: str | None, metric: str, label: str | None = None) -> Any:
        """The value of one metric; KeyError if the run did not compute it."""
        for value in self.metrics:
            if (value.column, value.metric, value.label) == (column, metric, label):
                return value.value
        raise KeyError(f"no metric {metric!r} for column {column!r}" + (f" label {label!r}" if label else ""))

    def summary(self) -> dict:
        """A few numbers for the I/O record: run id, verdict, counts."""
        return {"run_id": self.run_id, "backend": self.backend, "passed": self.passed,
                "checks": len(self.results), "errors": len(self.errors), "warnings": len(self.warnings),
                "skipped": len(self.skipped), "seconds": self.seconds, "rows": self.rows,
                "quarantined": self.quarantined}

    def as_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def to_html(self, history: Iterable[Mapping[str, Any]] | None = None) -> str:
        """The report as one self-contained HTML page (:mod:`lakeio.validation.html`): verdicts,
        failing values, and a plot per metric of ``history`` (earlier runs' metric records, e.g.
        :meth:`lakeio.Catalog.metrics_history`) with this run and the bounds it was held to."""
        from lakeio.validation.html import render

        return render(self, history)

    def describe_failures(self) -> str:
        """One line per failed check, errors first."""
        return "\n".join(f"  {r.severity:<7} {r.check} [{r.column or 'table'}]: {r.message}"
                         + (f" (deequ: {r.deequ})" if r.deequ else "") for r in self.errors + self.warnings)

    def __str__(self) -> str:
        head = (f"validation of dataset {self.dataset!r} [{self.env}] on {self.operation} ({self.backend}, "
                f"run {self.run_id}): {len(self.results)} checks, {len(self.errors)} errors, "
                f"{len(self.warnings)} warnings, {len(self.skipped)} skipped, {self.rows} rows"
                + (f", {self.quarantined} quarantined" if self.quarantined else ""))
        failures = self.describe_failures()
        return head + ("\n" + failures if failures else "")
