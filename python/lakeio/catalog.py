"""The catalog: datasets by name, bound to one environment, read and written with one line."""

from __future__ import annotations

import difflib
import os
import string
from pathlib import Path
from typing import Any, Iterable

from lakeio.config import Binding, EnvironmentSettings, Resource, expand_variables, load_config
from lakeio.dispatch import choose_engine
from lakeio.engines import WRITE_MODES, WriteRequest
from lakeio.errors import ConfigError, InvalidArgumentError, ResourceNotFoundError
from lakeio.frame import LakeFrame, ScanPlan, columns_argument
from lakeio.metrics import IORecord, Timer
from lakeio.predicate import FilterSpec, parse_filter
from lakeio.storage import Location, Storage, resolve_location
from lakeio.validation import Contract, ContractBinding, MetricsSink, ValidationReport, load_contracts

DEFAULT_ENV = "local"


class Catalog:
    """Datasets by name, in one environment.

    Example:
        >>> import lakeio
        >>> lake = lakeio.Catalog.load("conf", env="local")                       # doctest: +SKIP
        >>> jan = lake.read("flights", where="year = 2013 AND month = 1",
        ...                 columns=["carrier", "dep_delay"])                    # doctest: +SKIP
        >>> lake.write("delay_by_carrier", jan.to_pandas(), mode="overwrite")    # doctest: +SKIP
    """

    def __init__(self, env: str, settings: EnvironmentSettings, resources: dict[str, Resource],
                 bindings: dict[str, Binding], origins: dict[str, Path], base_dir: Path,
                 contracts: dict[str, Contract] | None = None):
        self._env, self._settings, self._resources, self._bindings = env, settings, resources, bindings
        self._origins, self._base_dir = origins, base_dir
        self._storage = Storage(settings.s3)
        self._engines: dict[str, Any] = {}
        sink = MetricsSink(settings.metrics_sink, self._storage, self._base_dir)
        self._contracts = {name: ContractBinding(name, env, contract, sink)
                           for name, contract in (contracts or {}).items()}

    @classmethod
    def load(cls, folder: str | os.PathLike, env: str | None = None, *,
             base_dir: str | os.PathLike | None = None) -> "Catalog":
        """Loads every YAML file of ``folder`` and binds the catalog to one environment.

        Args:
            folder: the configuration folder (``lakeio.yaml`` plus resource files).
            env: the environment; default ``$LAKEIO_ENV``, else ``local``.
            base_dir: what relative local URIs are relative to; default the current directory.

        Raises:
            ConfigError: every problem in every file, or an environment nothing defines.
        """
        env = env or os.environ.get("LAKEIO_ENV") or DEFAULT_ENV
        settings, resources, origins = load_config(folder)
        contracts = load_contracts(resources, origins)
        known = set(settings.environments) | {e for r in resources.values() for e in r.environments}
        if env not in known:
            hint = difflib.get_close_matches(env, sorted(known), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{folder}: environment {env!r} is not defined{suggestion} "
                              f"(defined: {', '.join(sorted(known)) or 'none'})")
        env_settings = expand_variables(settings.environments.get(env, EnvironmentSettings()),
                                        f"{folder}/lakeio.yaml: environments.{env}")
        # ${VAR} in bindings is expanded once, here, so an unset variable fails at load, not at first use.
        bindings, problems = {}, []
        for name in sorted(n for n, r in resources.items() if env in r.environments):
            try:
                bindings[name] = expand_variables(resources[name].environments[env],
                                                  f"{origins[name]}: {name}.environments.{env}")
            except ConfigError as error:
                problems.append(str(error))
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
        return cls(env, env_settings, resources, bindings, origins, Path(base_dir or os.getcwd()).resolve(), contracts)

    @property
    def env(self) -> str:
        return self._env

    @property
    def names(self) -> list[str]:
        """The dataset names, sorted."""
        return sorted(self._resources)

    def resource(self, name: str) -> Resource:
        """The configuration of dataset ``name``."""
        if name not in self._resources:
            hint = difflib.get_close_matches(name, self.names, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ResourceNotFoundError(f"no dataset {name!r} in the catalog{suggestion} (datasets: {', '.join(self.names)})")
        return self._resources[name]

    def location(self, name: str, **placeholders: Any) -> Location:
        """Where dataset ``name`` lives in this environment, with ``{placeholders}`` filled."""
        return self._resolve(name, placeholders)[1]

    def exists(self, name: str, **placeholders: Any) -> bool:
        """True when dataset ``name`` has data in this environment."""
        location = self._resolve(name, placeholders)[1]
        return self._engine("arrow").exists(location, self._resources[name].format)

    def read(self, name: str, *, columns: Iterable[str] | None = None, where: FilterSpec = None,
             engine: str | None = None, validate: bool = True, **placeholders: Any) -> LakeFrame:
        """A lazy read of dataset ``name``.

        Args:
            name: the dataset.
            columns: the columns to keep; default all.
            where: a SQL-like filter string or structured predicates (see :mod:`lakeio.predicate`).
            engine: ``"arrow"``, ``"spark"`` or ``"auto"``; default the dataset's or environment's.
            validate: run the dataset's contract on what the read materialises (see README).
            **placeholders: values for ``{placeholders}`` in the dataset's URI.
        """
        binding, location = self._resolve(name, placeholders)
        resource = self._resources[name]
        chosen, reason = choose_engine(engine, binding.engine, self._settings.engine)
        plan = ScanPlan(dataset=name, env=self._env, format=resource.format, location=location,
                        partition_by=resource.partition_by, columns=columns_argument(columns),
                        predicate=parse_filter(where), contract=self._contracts.get(name) if validate else None)
        return LakeFrame(plan, self._engine(chosen), reason)

    def write(self, name: str, data: Any, *, mode: str = "error", engine: str | None = None,
              validate: bool = True, **placeholders: Any) -> IORecord:
        """Writes pandas, Arrow or Spark data to dataset ``name``.

        Args:
            mode: ``"error"`` (refuse if it exists), ``"append"`` or ``"overwrite"``.
            validate: run the dataset's contract before anything is written.

        Raises:
            DataQualityError: the data failed an error-level check of the contract; nothing was written.

        Returns:
            The I/O record of the write (also logged to ``lakeio.io``).
        """
        if mode not in WRITE_MODES:
            raise InvalidArgumentError(f"write mode {mode!r} is not one of {', '.join(WRITE_MODES)}")
        binding, location = self._resolve(name, placeholders)
        resource = self._resources[name]
        chosen, reason = choose_engine(engine, binding.engine, self._settings.engine, data)
        request = WriteRequest(dataset=name, env=self._env, format=resource.format, location=location,
                               partition_by=resource.partition_by, mode=mode, data=data)
        with Timer(request.record(chosen, reason)) as record:
            if validate and name in self._contracts:
                request = self._contracts[name].check_write(request, chosen, record)
            self._engine(chosen).write(request, record)
        return record

    def validate(self, name: str, data: Any = None, *, engine: str | None = None,
                 **placeholders: Any) -> ValidationReport:
        """Runs dataset ``name``'s contract on ``data`` (pandas, Arrow or Spark) without writing it,
        or, without ``data``, on the whole stored dataset, streamed (Arrow) or in one job (Spark).
        Metrics go to the sink and warnings to the log as on reads and writes, but failures are
        returned in the report, not raised.

        Example:
            >>> report = lake.validate("flights")                               # doctest: +SKIP
            >>> report.passed, len(report.errors)                               # doctest: +SKIP
            (True, 0)
        """
        self.resource(name)
        if name not in self._contracts:
            raise InvalidArgumentError(f"dataset {name!r} has no contract (give its resource a 'schema:' file)")
        binding, location = self._resolve(name, placeholders)
        chosen, _ = choose_engine(engine, binding.engine, self._settings.engine, data)
        resource = self._resources[name]
        stored = ScanPlan(dataset=name, env=self._env, format=resource.format, location=location,
                          partition_by=resource.partition_by)
        return self._contracts[name].validate(data, chosen, self._engine(chosen), stored)

    def spark(self):
        """The SparkSession lakeio uses in this environment (started on first use)."""
        return self._engine("spark").session()

    def _engine(self, name: str):
        if name not in self._engines:
            if name == "spark":
                from lakeio.engines.spark import SparkEngine

                self._engines[name] = SparkEngine(self._settings, self._storage)
            else:
                from lakeio.engines.arrow import ArrowEngine

                self._engines[name] = ArrowEngine(self._storage)
        return self._engines[name]

    def _resolve(self, name: str, placeholders: dict[str, Any]) -> tuple[Binding, Location]:
        resource = self.resource(name)
        if name not in self._bindings:
            raise ResourceNotFoundError(
                f"dataset {name!r} ({self._origins[name]}) has no binding for environment {self._env!r} "
                f"(it has: {', '.join(sorted(resource.environments))})"
            )
        binding = self._bindings[name]
        uri = fill_placeholders(binding.uri, placeholders, f"dataset {name!r}")
        return binding, resolve_location(uri, self._base_dir)


def fill_placeholders(template: str, values: dict[str, Any], what: str) -> str:
    """Fills ``{name}`` fields of a URI; every value must be one plain path segment.

    Example:
        >>> fill_placeholders("data/runs/{run_date}", {"run_date": "2024-01-31"}, "dataset 'runs'")
        'data/runs/2024-01-31'
    """
    parsed = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)
              if field is not None]
    for field, spec, conversion in parsed:
        if not field.isidentifier() or spec or conversion:
            raise ConfigError(f"{what}: URI {template!r} has a malformed placeholder; write {{name}} only")
    fields = {field for field, _, _ in parsed}
    missing = sorted(fields - set(values))
    if missing:
        raise InvalidArgumentError(f"{what}: URI {template!r} needs a value for {', '.join(missing)}")
    unknown = sorted(set(values) - fields)
    if unknown:
        raise InvalidArgumentError(f"{what}: URI {template!r} has no placeholder {', '.join(unknown)}")
    for field in fields:
        text = str(values[field])
        if not text or text in (".", "..") or any(c in text for c in "/\\\0?#"):
            raise InvalidArgumentError(
                f"{what}: placeholder {field}={text!r} must be one non-empty path segment "
                "(no '/', '\\', '?', '#', '.' or '..'), so a value cannot escape the dataset's prefix"
            )
    return template.format(**{field: str(values[field]) for field in fields})
