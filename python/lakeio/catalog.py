"""The catalog: datasets by name, bound to one environment, read and written with one line."""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import importlib.util
import logging
import os
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeio.config import (
    QUARANTINE_RUN_COLUMN,
    Binding,
    EnvironmentSettings,
    Options,
    Quarantine,
    Resource,
    effective_options,
    expand_variables,
    load_config,
    short_repr,
)
from lakeio.dispatch import choose_engine, explicit_engine
from lakeio.engines import Engine, SparkCapable, create_engine
from lakeio.errors import (
    ConfigError,
    EngineUnavailableError,
    InvalidArgumentError,
    LakeioError,
    ResourceNotFoundError,
    storage_error,
)
from lakeio.frame import LakeFrame, columns_argument
from lakeio.lineage import Lineage
from lakeio.metrics import IORecord, Timer
from lakeio.predicate import And, FilterSpec, In, Not, parse_filter
from lakeio.requests import (
    ENGINE_CHOICES,
    WRITE_MODES,
    EngineChoice,
    MergeMatched,
    MergeNotMatched,
    MergeRequest,
    ResolvedDataset,
    ScanPlan,
    WriteMode,
    WriteRequest,
)
from lakeio.storage import Location, Storage, resolve_location
from lakeio.validation import Contract, ContractBinding, MetricsSink, ValidationReport, load_contracts

if TYPE_CHECKING:
    from lakeio.dataset import Dataset
    from lakeio.engines.arrow import Scan
    from lakeio.files import RunJournal

DEFAULT_ENV = "local"


class Catalog:
    """Datasets by name, in one environment.

    Example:
        >>> import lakeio
        >>> lake = lakeio.Catalog.load("conf", env="sample")
        >>> jan = lake.read("flights", where="year = 2013 AND month = 1", columns=["carrier", "dep_delay"])
        >>> record = lake.write("delay_by_carrier", jan.to_pandas(), mode="overwrite", period="2013-01")
        >>> record.operation, record.rows, record.format
        ('write', 224, 'parquet')
    """

    def __init__(self, env: str, settings: EnvironmentSettings, resources: dict[str, Resource],
                 bindings: dict[str, Binding], origins: dict[str, Path], base_dir: Path,
                 contracts: dict[str, Contract] | None = None):
        self._env, self._settings, self._resources, self._bindings = env, settings, resources, bindings
        self._origins, self._base_dir = origins, base_dir
        self._storage = Storage(settings.s3)
        self._engines: dict[str, Engine] = {}
        sink = MetricsSink(settings.metrics, self._storage, self._base_dir)
        self._contracts = {name: ContractBinding(name, env, contract, sink)
                           for name, contract in (contracts or {}).items()}
        self._lineage = Lineage(settings.lineage, env) if settings.lineage.transport != "none" else None
        history = settings.metrics
        if history.format == "delta" and history.dataset not in resources:
            # The metrics history reads as a dataset like any other (its records' columns: lakeio.validation.sink).
            binding = Binding(uri=history.uri)
            self._resources = {**resources, history.dataset: Resource(
                format="delta", partition_by=("dataset",), environments={env: binding},
                description="lakeio's metrics history: one row per metric of each validation run")}
            self._bindings = {**bindings, history.dataset: binding}
            self._origins = {**origins, history.dataset: base_dir / "lakeio.yaml"}

    def __repr__(self) -> str:
        return f"Catalog(env={self._env!r}, datasets={self.names!r})"

    @classmethod
    def load(cls, folder: str | os.PathLike, env: str | None = None, *,
             base_dir: str | os.PathLike | None = None) -> Catalog:
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
        for name, resource in list(resources.items()):
            if resource.quarantine is not None:  # a dataset of the catalog's own, bound where its source is
                if resource.quarantine.name in resources:
                    raise ConfigError(f"{origins[name]}: {name}.quarantine.name: {resource.quarantine.name!r} "
                                      f"is already a dataset ({origins[resource.quarantine.name]})")
                resources[resource.quarantine.name] = resource.quarantine.resource(name, resource.format)
                origins[resource.quarantine.name] = origins[name]
        known = set(settings.environments) | {e for r in resources.values() for e in r.environments}
        if env not in known:
            hint = difflib.get_close_matches(env, sorted(known), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{folder}: environment {env!r} is not defined{suggestion} "
                              f"(defined: {', '.join(sorted(known)) or 'none'})")
        env_settings = expand_variables(settings.environments.get(env, EnvironmentSettings()),
                                        f"{folder}/lakeio.yaml: environments.{env}")
        # ${VAR} in bindings is expanded once, here, so an unset variable fails at load, not at first use.
        # ${LAKEIO_CONF_DIR} is the configuration folder, for files that ship with it (samples).
        builtins = {"LAKEIO_CONF_DIR": str(Path(folder).resolve())}
        bindings, problems = {}, []
        for name in sorted(n for n, r in resources.items() if env in r.environments):
            try:
                bindings[name] = expand_variables(resources[name].environments[env],
                                                  f"{origins[name]}: {name}.environments.{env}", builtins)
            except ConfigError as error:
                problems.append(str(error))
        base = Path(base_dir or os.getcwd()).resolve()
        problems += nested_locations(bindings, origins, env, base)
        if problems:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
        return cls(env, env_settings, resources, bindings, origins, base, contracts)

    @property
    def env(self) -> str:
        return self._env

    @property
    def settings(self) -> EnvironmentSettings:
        """This environment's settings (engine, S3, Spark), from ``lakeio.yaml``."""
        return self._settings

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
        return self.resolve(name, **placeholders).location

    def binding(self, name: str) -> Binding:
        """Dataset ``name``'s binding in this environment (its URI template, engine, format, options)."""
        return self._binding(name)

    def format(self, name: str) -> str:
        """The format of dataset ``name`` in this environment (a binding may have its own)."""
        return self._binding(name).format or self._resources[name].format

    def options(self, name: str, override: Mapping[str, Any] | None = None) -> Options:
        """The options of dataset ``name`` in this environment: the resource's, refined by the
        binding's, then by ``override`` (a call's ``options={...}``)."""
        return self._options(name, self.format(name), override)

    def _options(self, name: str, format: str, override: Mapping[str, Any] | None) -> Options:
        base = self._resources[name].options.for_format(format).merged(self._bindings[name].options)
        return effective_options(base, override, format, f"dataset {name!r}")

    def resolve(self, name: str, *, options: Mapping[str, Any] | None = None, validate: bool = True,
                **placeholders: Any) -> ResolvedDataset:
        """Dataset ``name`` as one call sees it: its binding here, ``{placeholders}`` filled, options
        refined by ``options``; the contract unless ``validate`` is False. Every request of a call
        shares the one this builds.

        Example:
            >>> lake = Catalog.load("conf", env="sample")
            >>> target = lake.resolve("delay_by_carrier", period="2013-01")
            >>> target.format, target.location.path.endswith("sample-output/delay_by_carrier/2013-01")
            ('parquet', True)
        """
        binding = self._binding(name)
        format = binding.format or self._resources[name].format
        uri = fill_placeholders(binding.uri, placeholders, f"dataset {name!r}")
        return ResolvedDataset(name=name, env=self._env, format=format,
                               location=resolve_location(uri, self._base_dir),
                               partition_by=self._resources[name].partition_by,
                               options=self._options(name, format, options),
                               contract=self._contracts.get(name) if validate else None,
                               column_types=self._column_types(name),
                               partition_types=self._column_types(name, partitions=True), engine=binding.engine,
                               placeholders=tuple((k, str(v)) for k, v in sorted(placeholders.items())),
                               on_complete=self._completed)

    def _completed(self, target: ResolvedDataset, record: IORecord, error: BaseException | None) -> None:
        """When a read, write or merge ends: the Delta version it read or made goes on the record,
        a write's metrics go to the sink (only now that it committed), and lineage is emitted."""
        if error is None and target.format == "delta" and record.version is None and record.operation != "count":
            try:
                record.version = self._storage.delta_version(target.location)
            except Exception as failure:  # noqa: BLE001 - the I/O succeeded: only its record lacks the version
                logging.getLogger("lakeio").warning("lakeio: %s: done, but the table's version could not be read (%s)",
                                                    target.describe(), storage_error("version", failure))
        if error is None and record.operation == "write" and target.contract is not None:
            target.contract.committed(record, target.partition)
        if self._lineage is not None:
            self._lineage.emit(target, record, error, self._lineage_schema(target, error))

    def _lineage_schema(self, target: ResolvedDataset, error: BaseException | None) -> list[tuple[str, str]] | None:
        """The columns a lineage event names: the contract's, else the stored data's (None if unreadable)."""
        binding = self._contracts.get(target.name)
        if binding is not None:
            return [(c.name, str(c.type)) for c in binding.contract.columns.values()]
        if error is not None:
            return None
        try:
            schema = self._engine("arrow").schema(ScanPlan(target, validate=False))
        except LakeioError:  # the event goes out without a schema
            return None
        return [(field.name, str(field.type)) for field in schema]

    def exists(self, name: str, **placeholders: Any) -> bool:
        """True when dataset ``name`` has data in this environment."""
        target = self.resolve(name, **placeholders)
        return self._engine("arrow").exists(target.location, target.format)

    def read(self, name: str, *, columns: Iterable[str] | None = None, where: FilterSpec = None,
             version: int | None = None, timestamp: dt.datetime | str | None = None,
             options: Mapping[str, Any] | None = None, engine: EngineChoice | None = None, validate: bool = True,
             **placeholders: Any) -> LakeFrame:
        """A lazy read of dataset ``name``.

        Args:
            name: the dataset.
            columns: the columns to keep; default all.
            where: a SQL-like filter string or structured predicates (see :mod:`lakeio.predicate`).
            version: Delta time travel: read this table version.
            timestamp: Delta time travel: read the version current at this time (a datetime or an
                ISO-8601 string; without a zone it is UTC).
            options: overrides of the dataset's options for this read (e.g. ``{"delimiter": ";"}``).
            engine: ``"arrow"``, ``"spark"`` or ``"auto"``; default the dataset's or environment's.
            validate: run the dataset's contract on what the read materialises.
            **placeholders: values for ``{placeholders}`` in the dataset's URI.

        Example:
            >>> lake = Catalog.load("conf", env="sample")
            >>> jan = lake.read("flights", where="month = 1", columns=["carrier", "dep_delay"])
            >>> jan.engine, jan.to_pandas().shape
            ('arrow', (224, 2))
        """
        engine = engine_argument(engine)
        target = self._with_recorded_types(self.resolve(name, options=options, **placeholders))
        predicate = parse_filter(where)
        unsettled = self._unsettled_runs(name)
        if unsettled:  # a quarantine shows a run once its dataset's commit is known to be made
            hidden = Not(In(QUARANTINE_RUN_COLUMN, unsettled))
            predicate = hidden if predicate is None else And((predicate, hidden))
        pair = self._quarantine_pair(name)
        plan = ScanPlan(target, columns=columns_argument(columns), predicate=predicate,
                        version=version_argument(version, timestamp, target.format, name),
                        timestamp=timestamp_argument(timestamp), validate=validate,
                        json_lists=(self._quarantine(pair[0]).column,) if pair is not None and pair[1] == name
                        and target.format == "csv" else ())
        scan = scan_bytes = None
        if explicit_engine(engine, target.engine, self._settings.engine) is None:
            scan, scan_bytes = self._sized_scan(plan)
        chosen, reason = choose_engine(engine, target.engine, self._settings.engine, scan_bytes=scan_bytes,
                                       arrow_max_bytes=int(self._settings.arrow_max_bytes),
                                       spark_installed=importlib.util.find_spec("pyspark") is not None)
        return LakeFrame(plan, self._engine(chosen), reason, scan)

    def _sized_scan(self, plan: ScanPlan) -> tuple[Scan | None, int | None]:
        """For ``engine: auto``: the read's scan, opened once (the frame reads it while it is
        current), and the bytes of the files it keeps after partition pruning; (None, None) when
        they cannot be known yet (no data there, a bad filter): the read itself then says why."""
        try:
            scan = self._engine("arrow").open_scan(plan)
            return scan, sum(size for _, size in scan.files())
        except Exception:  # the read raises the real error, with its own message
            return None, None

    def write(self, name: str, data: Any, *, mode: WriteMode = "error", replace_where: FilterSpec = None,
              options: Mapping[str, Any] | None = None, engine: EngineChoice | None = None, validate: bool = True,
              idempotency_key: str | None = None, **placeholders: Any) -> IORecord:
        """Writes pandas, Arrow or Spark data to dataset ``name``.

        Args:
            data: a pandas DataFrame, a pyarrow Table, RecordBatch or RecordBatchReader (streamed),
                or a Spark DataFrame.
            mode: ``"error"`` (refuse if it exists), ``"append"``, ``"overwrite"``, or
                ``"overwrite_partitions"`` (replace only the partitions present in ``data``).
            replace_where: with ``mode="overwrite"``, replace only what matches this filter: the
                matching rows of a Delta table, the matching partitions of plain files. Every row
                of ``data`` must match it.
            options: overrides of the dataset's options for this write (e.g.
                ``{"schema_mode": "merge"}`` to add new columns to a Delta table).
            validate: run the dataset's contract before anything is written.
            idempotency_key: with ``mode="append"`` on Delta, e.g. the run id of the task: the append
                commits once per key; a retry with the same key writes nothing and its record says
                ``extra["idempotent_skip"] = True`` (see :class:`~lakeio.requests.WriteRequest`).

        Raises:
            DataQualityError: the data failed an error-level check of the contract; nothing was written.

        Returns:
            The I/O record of the write (also logged to ``lakeio.io``).
        """
        if mode not in WRITE_MODES:
            raise InvalidArgumentError(f"write mode {mode!r} is not one of {', '.join(WRITE_MODES)}")
        target = self._with_recorded_types(self.resolve(name, options=options, **placeholders))
        chosen, reason = choose_engine(engine_argument(engine), target.engine, self._settings.engine, data)
        request = WriteRequest(target, mode=mode, data=data, replace_where=parse_filter(replace_where),
                               idempotency_key=idempotency_key)
        request.check_arguments()
        self._settle_runs(name)
        contract = target.contract if validate else None
        if contract is not None and contract.contract.quarantined:
            return self._write_quarantining(request, contract, chosen, reason)
        with Timer(request.record(chosen, reason)) as record:
            if contract is not None:
                request = contract.check_write(request, self._table_reader(data), record)
            self._engine(chosen).write(request, record)
        return record

    def _write_quarantining(self, request: WriteRequest, contract: ContractBinding, chosen: str,
                            reason: str) -> IORecord:
        """A write whose contract quarantines: the rows failing a quarantining check go to the
        quarantine dataset (an append), the others to the dataset; both or neither
        (:meth:`_commit_run`). A retry with the same ``idempotency_key`` after the run's commit
        point writes nothing to either."""
        import uuid

        run_id = request.idempotency_key or uuid.uuid4().hex
        engine = self._engine(chosen)
        with Timer(request.record(chosen, reason)) as record:
            record.extra["quarantine"] = {"dataset": self._quarantine(request.dataset).name, "rows": 0,
                                          "run_id": run_id}
            if request.idempotency_key is not None and self._run_committed(None, request.location, request.format,
                                                                            request.transaction_app_id, run_id):
                request.skipped_as_repeat(record)  # its commit point was made: both datasets have the run
                return record
            passing, failing, failed = contract.split(request.data, self._quarantine(request.dataset).column, run_id,
                                                      as_text=self._quarantine_as_text(request.dataset))
            request = contract.check_write(replace(request, data=passing), self._table_reader(passing), record,
                                           quarantined=failed)
            self._commit_run(request, run_id, failing, failed, chosen,
                             lambda marked: engine.write(marked, record))
            if record.rows is None:  # an engine that does not count what it wrote: the contract counted it
                record.rows = record.extra["validation"]["rows"]
            record.extra["quarantine"]["rows"] = failed
        return record

    def _merge_quarantining(self, request: MergeRequest, contract: ContractBinding, chosen: str,
                            reason: str) -> IORecord:
        """A merge whose contract quarantines: the source rows it would write that fail a
        quarantining check go to the quarantine dataset, the others (and the deletes) are merged;
        both or neither, as a write's (:meth:`_commit_run`)."""
        import uuid

        run_id = uuid.uuid4().hex
        engine = self._engine(chosen)
        with Timer(request.record(chosen, reason)) as record:
            passing, failing, failed = contract.split(request.data, self._quarantine(request.dataset).column, run_id,
                                                      keep=request.delete_when,
                                                      as_text=self._quarantine_as_text(request.dataset))
            request = contract.check_merge(replace(request, data=passing), self._table_reader(passing), record)
            self._commit_run(request, run_id, failing, failed, chosen,
                             lambda marked: engine.merge(marked, record))
            record.extra["quarantine"] = {"dataset": self._quarantine(request.dataset).name, "rows": failed,
                                          "run_id": run_id}
        return record

    def _commit_run(self, request: WriteRequest | MergeRequest, run_id: str, failing: Any, failed: int, chosen: str,
                    commit: Callable[[Any], None]) -> None:
        """Commits quarantining run ``run_id``: ``failing`` (``failed`` rows) appended to the
        quarantine dataset, then ``commit(request)``, the dataset's commit; both or neither.

        The run is journaled beside the quarantine (:class:`lakeio.files.RunJournal`), then the
        quarantine append commits, then the dataset's commit, which is the run's commit point: on
        Delta it carries the run's ``txn``, a plain-file commit puts the run's receipt. A run that
        fails before its commit point has its quarantine rows removed again; one whose writer is
        killed is settled the same way by the next operation on either dataset (:meth:`_settle_runs`).
        """
        from lakeio import files

        if not failed:
            commit(request)  # nothing to quarantine: one commit (a key's txn, if any, already marks it)
            return
        q_target = self.resolve(self._quarantine(request.dataset).name, validate=False)
        journal = files.RunJournal(self._storage, q_target.location)
        marked = replace(request, run_id=run_id, run_receipt=journal.receipt(run_id)) \
            if isinstance(request, WriteRequest) else replace(request, run_id=run_id)
        entry = journal.begin(run_id, request.location, request.format, marked.transaction_app_id)
        try:
            q_request = WriteRequest(q_target, mode="append", data=failing)
            with Timer(q_request.record(chosen, "the quarantine of " + request.dataset)) as q_record:
                self._engine(chosen).write(q_request, q_record)
            files.reach_step("quarantine-committed")
            commit(marked)
            files.reach_step("dataset-committed")
        except BaseException:
            journal.abandon(entry)  # if settling it here fails too, the next operation does
            with contextlib.suppress(Exception):
                self._settle_run(journal, entry, q_target)
            raise
        journal.end(run_id)

    def _quarantine(self, name: str) -> Quarantine:
        quarantine = self._resources[name].quarantine
        assert quarantine is not None, "the catalog refuses a quarantining contract without a quarantine dataset"
        return quarantine

    def _quarantine_as_text(self, name: str) -> bool:
        """True when ``name``'s quarantine is CSV, which has no list type: the names of the checks
        each row failed are written as JSON text (``["in_set [day]"]``), read back as a list."""
        return self.format(self._quarantine(name).name) == "csv"

    def _quarantine_pair(self, name: str) -> tuple[str, str] | None:
        """(dataset, its quarantine dataset) when ``name`` is either; else None."""
        quarantine = self._resources[name].quarantine
        if quarantine is not None:
            return name, quarantine.name
        for source, resource in self._resources.items():
            if resource.quarantine is not None and resource.quarantine.name == name:
                return source, name
        return None

    def _settle_runs(self, name: str) -> int:
        """Settles the quarantining runs of ``name``'s pair whose writers are gone before settling
        them (rolled back if their dataset's commit was not made); returns how many. Every write,
        merge and ``recover`` of either dataset runs this first."""
        from lakeio import files

        pair = self._quarantine_pair(name)
        if pair is None or pair[1] not in self._bindings:
            return 0
        q_target = self.resolve(pair[1], validate=False)
        journal = files.RunJournal(self._storage, q_target.location)
        abandoned = [entry for entry in journal.pending() if journal.abandoned(entry)]
        return sum(self._settle_run(journal, entry, q_target) for entry in abandoned)

    def _unsettled_runs(self, name: str) -> tuple[str, ...]:
        """The runs in flight of quarantine dataset ``name`` (none if it is not one), which its
        reads leave out: their dataset's commit is not known to be made."""
        from lakeio import files

        pair = self._quarantine_pair(name)
        if pair is None or pair[1] != name:
            return ()
        return tuple(entry["run"] for entry in files.RunJournal(self._storage, self.location(name)).pending())

    def _settle_run(self, journal: RunJournal, entry: dict, q_target: ResolvedDataset) -> bool:
        """Settles run ``entry`` of ``journal``: its quarantine rows stay if its dataset's commit
        was made, else they are removed (an overwrite of its ``lakeio_run_id`` partition with no
        rows, by the Arrow engine: a Delta commit or a plain-file commit); then it is forgotten.
        Of processes settling it at once, one does (:meth:`RunJournal.take`); False for the others,
        which return once it is settled."""
        if not journal.take(entry["run"]):
            return False
        try:
            self._settle_taken(journal, entry, q_target)
        except BaseException:
            journal.release()
            raise
        return True

    def _settle_taken(self, journal: RunJournal, entry: dict, q_target: ResolvedDataset) -> None:
        import logging

        from lakeio import files
        from lakeio.predicate import Compare

        dataset = entry["dataset"]
        location, format = Location(dataset["scheme"], dataset["path"]), dataset["format"]
        committed = self._run_committed(journal, location, format, dataset["app_id"], entry["run"])
        if format != "delta":  # the writer may have been killed half way through the quarantine's commit
            files.CommitLog(self._storage, q_target.location, q_target.describe()).recover_abandoned()
        arrow = self._engine("arrow")
        if not committed and arrow.exists(q_target.location, q_target.format):
            empty = arrow.schema(ScanPlan(q_target, validate=False)).empty_table()
            undo = WriteRequest(q_target, mode="overwrite", data=empty,
                                replace_where=Compare(QUARANTINE_RUN_COLUMN, "=", entry["run"]))
            arrow.write(undo, undo.record("arrow", "rolling back the quarantine of a run whose dataset "
                                                   "commit was not made"))
        journal.end(entry["run"])
        logging.getLogger(__name__).warning(
            "lakeio: %s: %s the quarantining run %s its writer left unsettled", q_target.describe(),
            "completed" if committed else "rolled back", entry["run"])

    def _run_committed(self, journal: RunJournal | None, location: Location, format: str, app_id: str | None,
                       run: str) -> bool:
        """True when the dataset at ``location`` holds run ``run``'s commit (its commit point):
        on Delta its ``txn``; on plain files the receipt in ``journal``, once the dataset's commit
        log holds no commit of a writer that is gone (which may be that run's)."""
        from lakeio import files

        if format == "delta":
            return app_id is not None and self._storage.delta_transaction(location, app_id) is not None
        files.CommitLog(self._storage, location, location.uri).recover_abandoned()
        return journal is not None and journal.committed(run)

    def merge(self, name: str, data: Any, *, on: str | Iterable[str], when_matched: MergeMatched = "update",
              when_not_matched: MergeNotMatched = "insert", delete_when: FilterSpec = None,
              options: Mapping[str, Any] | None = None, engine: EngineChoice | None = None, validate: bool = True,
              **placeholders: Any) -> IORecord:
        """Upserts ``data`` into Delta dataset ``name``, matching rows on the key columns ``on``.

        Args:
            data: pandas, Arrow or Spark data with the table's columns; one row per key.
            on: the key column(s).
            when_matched: ``"update"`` (the table's row takes the data's values) or ``"ignore"``.
            when_not_matched: ``"insert"`` (data rows with a new key are added) or ``"ignore"``.
            delete_when: a filter on the data's columns (e.g. ``"op = 'D'"``): matching data rows
                delete the table's row with their key, and are never inserted.
            options: e.g. ``{"schema_mode": "merge"}`` to add the data's new columns to the table.
            validate: run the dataset's contract before the merge: row checks on the source rows
                it may write, table checks on the table as the merge leaves it.

        Raises:
            DataQualityError: the data failed an error-level check of the contract; nothing was merged.

        Returns:
            The I/O record, with ``extra`` holding ``rows_inserted``, ``rows_updated`` and
            ``rows_deleted``.

        Example:
            >>> import pyarrow as pa
            >>> lake = Catalog.load("conf")  # env local: flights is a Delta table under data/
            >>> sample = Catalog.load("conf", env="sample").read("flights").to_arrow()
            >>> _ = lake.write("flights", sample, mode="overwrite")
            >>> late = sample.filter(pa.compute.greater(sample["dep_delay"], 300))
            >>> changes = late.set_column(late.schema.get_field_index("dep_delay"), "dep_delay",
            ...                           pa.array([299.0] * late.num_rows))
            >>> record = lake.merge("flights", changes, on=["year", "month", "day", "flight", "carrier"])
            >>> record.extra["rows_updated"] == late.num_rows, record.extra["rows_inserted"]
            (True, 0)
        """
        target = self.resolve(name, options=options, **placeholders)
        chosen, reason = choose_engine(engine_argument(engine), target.engine, self._settings.engine, data)
        request = MergeRequest(target, data=data, on=(on,) if isinstance(on, str) else tuple(on),
                               when_matched=when_matched, when_not_matched=when_not_matched,
                               delete_when=parse_filter(delete_when))
        request.check_arguments()
        self._settle_runs(name)
        if validate and target.contract is not None and target.contract.contract.quarantined:
            return self._merge_quarantining(request, target.contract, chosen, reason)
        with Timer(request.record(chosen, reason)) as record:
            if validate and target.contract is not None:
                request = target.contract.check_merge(request, self._table_reader(data), record)
            self._engine(chosen).merge(request, record)
        return record

    def recover(self, name: str, **placeholders: Any) -> bool:
        """Finishes a commit of plain dataset ``name`` whose writer was stopped before it ended:
        completed if all its files had moved, else rolled back (see docs/guide/reliability.md);
        and settles the quarantining runs of ``name`` or of its quarantine (or, for a quarantine
        dataset, of its dataset) whose writers were stopped between their two commits (see
        docs/guide/validation.md). The next write does the same. False when there was none to
        finish (or its writer lives).
        """
        from lakeio import files

        target = self.resolve(name, validate=False, **placeholders)
        # A plain dataset's own commit first (settling a run may need its receipt), then its pair's runs.
        finished = target.format != "delta" and \
            files.CommitLog(self._storage, target.location, target.describe()).recover_abandoned()
        return self._settle_runs(name) > 0 or finished

    def _with_recorded_types(self, target: ResolvedDataset) -> ResolvedDataset:
        """``target`` with the types of its text columns as lakeio last wrote them, for the
        requests that read its stored data (:func:`lakeio.files.recorded_types`)."""
        from lakeio import files

        return files.recorded_types(self._storage, target)

    def _table_reader(self, data: Any) -> Engine:
        """The engine that reads a dataset's current rows for the table checks of a write of
        ``data``: Spark for Spark data (the checks run there, in one job), else Arrow (streamed)."""
        from lakeio.engines import is_spark_dataframe

        return self._engine("spark" if is_spark_dataframe(data) else "arrow")

    def dataset(self, name: str, **placeholders: Any) -> Dataset:
        """Dataset ``name`` as an object, with its ``{placeholders}`` filled once."""
        from lakeio.dataset import Dataset

        return Dataset(self, name, **placeholders)

    def validate(self, name: str, data: Any = None, *, engine: EngineChoice | None = None,
                 **placeholders: Any) -> ValidationReport:
        """Runs dataset ``name``'s contract on ``data`` (pandas, Arrow or Spark) without writing it,
        or, without ``data``, on the whole stored dataset, streamed (Arrow) or in one job (Spark).
        Metrics go to the sink and warnings to the log as on reads and writes, but failures are
        returned in the report, not raised.

        Example:
            >>> lake = Catalog.load("conf", env="sample")
            >>> report = lake.validate("flights")
            >>> report.passed, len(report.errors)
            (True, 0)
        """
        self.resource(name)
        if name not in self._contracts:
            raise InvalidArgumentError(f"dataset {name!r} has no contract (give its resource a 'schema:' file)")
        target = self._with_recorded_types(self.resolve(name, **placeholders))
        chosen, _ = choose_engine(engine_argument(engine), target.engine, self._settings.engine, data)
        # The stored data is read as it is: the report is the validation, not a read's check.
        stored = ScanPlan(target, validate=False)
        return self._contracts[name].validate(data, self._engine(chosen), stored)

    def metrics_history(self, name: str, operation: str = "validate") -> list[dict]:
        """The metric records of dataset ``name``'s earlier runs on ``operation`` (``validate``,
        ``write`` or ``read``) that history checks compare with, oldest first, from this
        environment's metrics sink; [] when the sink keeps none (``logging``). For a report's plots:
        ``report.to_html(lake.metrics_history("flights"))``."""
        self.resource(name)
        if name not in self._contracts:
            raise InvalidArgumentError(f"dataset {name!r} has no contract, so no metrics")
        return self._contracts[name].sink.runs(name, self._env, operation)

    def spark(self):
        """The SparkSession lakeio uses in this environment (started on first use)."""
        engine = self._engine("spark")
        if not isinstance(engine, SparkCapable):
            raise EngineUnavailableError(f"the engine {engine.name!r} registered as 'spark' has no Spark session")
        return engine.session()

    def _column_types(self, name: str, *, partitions: bool = False) -> tuple[tuple[str, str], ...]:
        """The contract's types of its data columns (for readers of text formats), or of its
        partition columns (for readers of partition folders)."""
        if name not in self._contracts:
            return ()
        columns = self._contracts[name].contract.columns.values()
        partition_by = self._resources[name].partition_by
        return tuple((c.name, str(c.type)) for c in columns if (c.name in partition_by) == partitions)

    def _engine(self, name: str) -> Engine:
        if name not in self._engines:
            self._engines[name] = create_engine(name, self._settings, self._storage)
        return self._engines[name]

    def _binding(self, name: str) -> Binding:
        """Dataset ``name``'s binding in this environment, or an error naming what it has."""
        resource = self.resource(name)
        if name not in self._bindings:
            raise ResourceNotFoundError(
                f"dataset {name!r} ({self._origins[name]}) has no binding for environment {self._env!r} "
                f"(it has: {', '.join(sorted(resource.environments))})"
            )
        return self._bindings[name]


def nested_locations(bindings: Mapping[str, Binding], origins: Mapping[str, Path], env: str,
                     base_dir: Path) -> list[str]:
    """A problem for each dataset whose location is inside another's (an overwrite of the outer one
    would delete it); a ``{placeholder}`` segment may be any folder. Two names of one location (a
    checked view of the same files) are allowed."""
    problems, roots = [], {}
    for name, binding in bindings.items():
        try:
            location = resolve_location(binding.uri, base_dir)
        except ConfigError as error:
            problems.append(f"{origins[name]}: {name}.environments.{env}.uri: {error}")
            continue
        roots[name] = (location.scheme, location.path.strip("/").split("/"))

    def within(inner: list[str], outer: list[str]) -> bool:
        return len(outer) < len(inner) and all(
            a == b or "{" in a or "{" in b for a, b in zip(outer, inner, strict=False))

    for outer, (scheme, outer_parts) in roots.items():
        for inner, (inner_scheme, inner_parts) in roots.items():
            if outer != inner and scheme == inner_scheme and within(inner_parts, outer_parts):
                first, second = outer, inner
                problems.append(f"{origins[second]}: {second}.environments.{env}.uri: "
                                f"{bindings[second].uri!r} is inside dataset {first!r} "
                                f"({bindings[first].uri!r}): writing {first!r} would replace it; give each "
                                "dataset a folder of its own")
    return problems


def engine_argument(engine: Any) -> Any:
    """Checks a call's ``engine=``: None or one of :data:`~lakeio.requests.ENGINE_CHOICES`."""
    if engine is not None and engine not in ENGINE_CHOICES:
        raise InvalidArgumentError(f"engine {engine!r} is not one of {', '.join(ENGINE_CHOICES)}")
    return engine


def version_argument(version: Any, timestamp: Any, format: str, name: str) -> int | None:
    """Checks a read's time-travel arguments: Delta only, one of the two, a whole version."""
    if version is None and timestamp is None:
        return None
    what = f"dataset {name!r}"
    if format != "delta":
        raise InvalidArgumentError(f"{what} is {format}: only Delta tables have versions to travel to")
    if version is not None and timestamp is not None:
        raise InvalidArgumentError(f"{what}: give version or timestamp, not both")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise InvalidArgumentError(f"{what}: version must be a whole number >= 0, got {version!r}")
    return version


def timestamp_argument(timestamp: dt.datetime | str | None) -> dt.datetime | None:
    """An aware datetime from a datetime or ISO-8601 string; a naive one is taken as UTC."""
    if timestamp is None:
        return None
    if isinstance(timestamp, str):
        try:
            timestamp = dt.datetime.fromisoformat(timestamp)
        except ValueError:
            raise InvalidArgumentError(f"timestamp {timestamp!r} is not ISO-8601 (e.g. '2024-01-31T12:00:00Z')") from None
    if not isinstance(timestamp, dt.datetime):
        raise InvalidArgumentError(f"timestamp must be a datetime or an ISO-8601 string, got {timestamp!r}")
    return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=dt.UTC)


# What a {placeholder} value may hold: no separator, escape (%), glob (* ? [ ] { }), home (~), drive
# or scheme (:) or control character, so every engine and store reads it as the same one folder.
_SEGMENT_PUNCTUATION = ("-", "_", ".", "=", "+", ",", "@")
MAX_SEGMENT = 255
_SEGMENT = re.compile(rf"[\w\-.=+,@ ]{{1,{MAX_SEGMENT}}}")


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
        value = values[field]
        text = "" if value is None else str(value)
        if value is None or not _SEGMENT.fullmatch(text) or text in (".", "..") or text != text.strip():
            raise InvalidArgumentError(
                f"{what}: placeholder {field}={short_repr(value)} must be one non-empty path segment of letters, digits, "
                f"spaces and {' '.join(_SEGMENT_PUNCTUATION)} (at most {MAX_SEGMENT} characters, not . or ..), "
                "so a value can neither leave the dataset's location nor match other folders"
            )
    return template.format(**{field: str(values[field]) for field in fields})
