"""The ``lakeio`` command: look at the catalog, validate data, start a contract, submit and run jobs.

Exit codes (one table, :data:`EXIT_CODES`): 0 ok; 1 data failed its contract; 2 usage or
configuration error (click's own usage errors are 2 as well); 3 storage or engine error.

Example:
    $ lakeio --conf conf --env sample datasets
    $ lakeio --env sample validate flights --json
    $ lakeio --env prod submit deploy/demo_driver.py --dry-run -- --engine spark
    $ lakeio --env prod k8s manifest deploy/demo_driver.py --image lakeio:0.1.0 -- --engine spark
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import click

from lakeio import k8s as k8s_manifests
from lakeio.catalog import Catalog
from lakeio.errors import (
    ConfigError,
    DataQualityError,
    InvalidArgumentError,
    LakeioError,
    ResourceNotFoundError,
)
from lakeio.k8s import SparkJob
from lakeio.requests import EngineChoice

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_STORAGE = 0, 1, 2, 3
# The first matching class wins; any other LakeioError (storage, engine, schema, memory) is EXIT_STORAGE.
EXIT_CODES: tuple[tuple[type[LakeioError], int], ...] = (
    (DataQualityError, EXIT_DATA),
    (ConfigError, EXIT_USAGE),
    (InvalidArgumentError, EXIT_USAGE),
    (ResourceNotFoundError, EXIT_USAGE),
)
# s3a credentials are never printed or passed on a command line: the driver sets them from its own
# environment when its session starts (lakeio.spark.session), executors get them with the job.
SECRET_CONF = ("spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.session.token",
               "spark.hadoop.fs.s3a.aws.credentials.provider")


def exit_code(error: LakeioError) -> int:
    """The command's exit code for a lakeio error."""
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), EXIT_STORAGE)


class _Group(click.Group):
    """Turns lakeio's errors into a one-line message on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LakeioError as error:
            click.echo(f"lakeio: error: {error}", err=True)
            raise click.exceptions.Exit(exit_code(error)) from error


class _State:
    """The global options; the catalog is loaded on first use."""

    def __init__(self, conf: str, env: str | None):
        self.conf, self.env = conf, env
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            if not Path(self.conf).is_dir():
                raise ConfigError(f"configuration folder {self.conf!r} does not exist (--conf or $LAKEIO_CONF)")
            self._catalog = Catalog.load(self.conf, env=self.env)
        return self._catalog


def _placeholders(values: tuple[str, ...]) -> dict[str, Any]:
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--param")
        pairs[key] = text
    return pairs


param_option = click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
                            help="A value for a {placeholder} in the dataset's URI (repeatable).")


@click.group(cls=_Group)
@click.option("--conf", "conf", envvar="LAKEIO_CONF", default="conf", show_default=True,
              help="The configuration folder (lakeio.yaml and resource files); or $LAKEIO_CONF.")
@click.option("--env", "env", default=None, help="The environment; default $LAKEIO_ENV, else local.")
@click.version_option(package_name="lakeio", prog_name="lakeio")
@click.pass_context
def cli(ctx: click.Context, conf: str, env: str | None) -> None:
    """lakeio: datasets by name, in the environment you run in."""
    ctx.obj = _State(conf, env)


@cli.command()
@click.pass_obj
def datasets(state: _State) -> None:
    """Each dataset, with its binding in the active environment."""
    lake = state.catalog
    rows = []
    for name in lake.names:
        resource = lake.resource(name)
        if lake.env not in resource.environments:
            rows.append([name, resource.format, f"(no binding in {lake.env}: {', '.join(sorted(resource.environments))})", ""])
            continue
        binding = lake.binding(name)
        rows.append([name, binding.format or resource.format, binding.uri, binding.engine or lake.settings.engine])
    click.echo(f"environment {lake.env} ({len(rows)} datasets)")
    click.echo(_columns(["dataset", "format", "uri", "engine"], rows))


@cli.command()
@click.argument("name")
@param_option
@click.pass_obj
def describe(state: _State, name: str, params: tuple[str, ...]) -> None:
    """Format, location, partitions, schema and contract of dataset NAME."""
    lake = state.catalog
    resource, binding = lake.resource(name), lake.binding(name)
    placeholders = _placeholders(params)
    lines = [f"dataset:     {name} [{lake.env}]" + (f": {resource.description}" if resource.description else ""),
             f"format:      {binding.format or resource.format}",
             f"engine:      {binding.engine or lake.settings.engine}"]
    try:
        target = lake.resolve(name, **placeholders)
        lines.append(f"location:    {target.location.uri}")
    except InvalidArgumentError as error:  # a placeholder not given: show the template and why
        target = None
        lines.append(f"location:    {binding.uri} ({error})")
    lines.append(f"partitions:  {', '.join(resource.partition_by) or 'none'}")
    contract = target.contract if target is not None else None
    if target is not None and lake.exists(name, **placeholders):
        schema = lake.read(name, validate=False, engine="arrow", **placeholders).schema
        lines.append("schema:")
        lines += [f"  {field.name}: {field.type}{'' if field.nullable else ' not null'}" for field in schema]
    else:
        lines.append("schema:      (no data here yet)")
    if contract is None:
        lines.append("contract:    none" if resource.contract is None else f"contract:    {resource.contract}")
    else:
        checks = sum(len(c.checks) for c in contract.contract.columns.values()) + len(contract.contract.checks)
        lines.append(f"contract:    {contract.contract.path} ({len(contract.contract.columns)} columns, {checks} checks, "
                     f"extra columns: {contract.contract.extra_columns})")
    click.echo("\n".join(lines))


@cli.command()
@click.argument("name")
@click.option("--where", "-w", default=None, help="A filter, e.g. \"year = 2013 AND month = 1\".")
@click.option("--columns", "-c", default=None, help="Comma-separated columns to keep.")
@click.option("--engine", type=click.Choice(["arrow", "spark", "auto"]), default=None)
@param_option
@click.pass_obj
def explain(state: _State, name: str, where: str | None, columns: str | None, engine: EngineChoice | None,
            params: tuple[str, ...]) -> None:
    """What a read of NAME would do: engine and why, filter, files and partitions pruned."""
    frame = state.catalog.read(name, where=where, columns=_column_list(columns), engine=engine,
                               **_placeholders(params))
    click.echo(frame.explain())


@cli.command()
@click.argument("name")
@click.option("-n", "rows", type=click.IntRange(min=0), default=10, show_default=True, help="Rows to show.")
@click.option("--where", "-w", default=None, help="A filter.")
@click.option("--columns", "-c", default=None, help="Comma-separated columns to keep.")
@param_option
@click.pass_obj
def head(state: _State, name: str, rows: int, where: str | None, columns: str | None, params: tuple[str, ...]) -> None:
    """The first rows of NAME (streamed; the contract is not run)."""
    reader = state.catalog.read(name, where=where, columns=_column_list(columns), validate=False, engine="arrow",
                                **_placeholders(params)).to_batches()
    taken: list[dict] = []
    for batch in reader:
        taken += batch.slice(0, rows - len(taken)).to_pylist()
        if len(taken) >= rows:
            break
    names = reader.schema.names
    click.echo(_columns(names, [[_cell(row[c]) for c in names] for row in taken]))


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as a self-contained HTML page, with each metric's history plotted.")
@click.option("--engine", type=click.Choice(["arrow", "spark", "auto"]), default=None)
@param_option
@click.pass_obj
def validate(state: _State, name: str, as_json: bool, html_path: Path | None, engine: EngineChoice | None,
             params: tuple[str, ...]) -> None:
    """Runs NAME's contract on its stored data; exit 1 when an error-level check fails."""
    report = state.catalog.validate(name, engine=engine, **_placeholders(params))
    click.echo(json.dumps(report.as_dict(), indent=2, default=str) if as_json else str(report))
    if html_path is not None:
        html_path.write_text(report.to_html(state.catalog.metrics_history(name, "validate")), encoding="utf-8")
        click.echo(f"wrote {html_path}", err=True)
    if not report.passed:
        raise click.exceptions.Exit(EXIT_DATA)


@cli.command()
@click.argument("name")
@param_option
@click.pass_obj
def recover(state: _State, name: str, params: tuple[str, ...]) -> None:
    """Completes or rolls back a commit of NAME (plain files) whose writer was stopped before it ended,
    and settles the quarantining runs of NAME's pair stopped between their two commits."""
    finished = state.catalog.recover(name, **_placeholders(params))
    click.echo(f"{name}: {'finished the interrupted commit' if finished else 'no interrupted commit'}")


@cli.group()
def contract() -> None:
    """Validation contracts."""


@contract.command("init")
@click.argument("name")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the contract here (refused if it exists); default stdout.")
@click.option("--max-labels", type=click.IntRange(min=0), default=20, show_default=True,
              help="String columns with at most this many distinct values get an in_set check.")
@click.option("--engine", type=click.Choice(["arrow", "spark"]), default="arrow", show_default=True,
              help="The engine that reads the data (Spark streams it to the profile in batches).")
@param_option
@click.pass_obj
def contract_init(state: _State, name: str, output: Path | None, max_labels: int, engine: EngineChoice,
                  params: tuple[str, ...]) -> None:
    """A contract skeleton for NAME from a profile of its data (types, nulls, ranges, distinct
    values, label sets), to edit."""
    from lakeio.validation.profile import contract_skeleton

    reader = state.catalog.read(name, validate=False, engine=engine, **_placeholders(params)).to_batches()
    text = contract_skeleton(name, reader, max_labels=max_labels)
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists():
        raise InvalidArgumentError(f"{output} exists; remove it or choose another --output")
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}; edit it, then set 'schema: {output.name}' on the resource", err=True)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("driver", type=click.Path(exists=True, dir_okay=False))
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.option("--master", default=None, help="Spark master; default the environment's spark.master.")
@click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE", help="Extra Spark conf (repeatable).")
@click.option("--dist", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the lakeio zip for --py-files is built; default a temporary folder.")
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
@click.pass_obj
def submit(state: _State, driver: str, arguments: tuple[str, ...], master: str | None, spark_conf: tuple[str, ...],
           dist: Path | None, dry_run: bool) -> None:
    """spark-submit DRIVER with lakeio's jars, lakeio as a zip on --py-files, and the environment's
    Spark conf; ARGUMENTS go to the driver (after --)."""
    lake = state.catalog
    extra = _placeholders(spark_conf)
    command = submit_command(lake, driver, list(arguments), master=master, extra_conf=extra,
                             dist=dist or Path(tempfile.gettempdir()) / "lakeio-submit")
    environment = {"LAKEIO_ENV": lake.env, "LAKEIO_CONF": str(Path(state.conf).resolve())}
    if dry_run:
        click.echo(" ".join(f"{k}={shlex.quote(v)}" for k, v in environment.items()) + " " + shlex.join(command))
        return
    raise click.exceptions.Exit(subprocess.run(command, env={**os.environ, **environment}).returncode)


def spark_job(lake: Catalog, driver: str, arguments: list[str], *,
              extra_conf: dict[str, str] | None = None) -> SparkJob:
    """What a spark-submit of ``driver`` in ``lake``'s environment takes, for ``lakeio submit``
    and ``lakeio k8s manifest`` alike: the session conf lakeio itself starts Spark with
    (credentials left out) plus ``extra_conf``, and the jars of :func:`lakeio.spark.jvm.jar_paths`."""
    from lakeio.spark import jvm
    from lakeio.spark.session import session_conf
    from lakeio.storage import Storage

    settings = lake.settings
    conf = {k: v for k, v in session_conf(settings, Storage(settings.s3)).items() if k not in SECRET_CONF}
    conf.update(extra_conf or {})
    return SparkJob(name=settings.spark.app_name, env=lake.env, conf=conf,
                    jars=tuple(Path(jar) for jar in jvm.jar_paths()), driver=Path(driver).resolve(),
                    arguments=tuple(arguments))


def submit_command(lake: Catalog, driver: str, arguments: list[str], *, master: str | None = None,
                   extra_conf: dict[str, str] | None = None, dist: Path) -> list[str]:
    """The spark-submit argument list for ``driver`` in ``lake``'s environment (:func:`spark_job`):
    ``--jars`` the helper and third-party jars, ``--py-files`` a zip of this lakeio (built into
    ``dist``), ``--conf`` each conf entry."""
    job = spark_job(lake, driver, arguments, extra_conf=extra_conf)
    command = [spark_submit_path(), "--master", master or lake.settings.spark.master, "--name", job.name,
               "--jars", ",".join(str(jar) for jar in job.jars), "--py-files", str(package_zip(dist))]
    for key, value in job.conf.items():
        command += ["--conf", f"{key}={value}"]
    return command + [str(job.driver), *job.arguments]


def spark_submit_path() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the one pyspark ships."""
    home = os.environ.get("SPARK_HOME")
    if home:
        return str(Path(home) / "bin" / "spark-submit")
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        from lakeio.errors import EngineUnavailableError

        raise EngineUnavailableError("spark-submit needs SPARK_HOME or pyspark: pip install 'lakeio[spark]'")
    return str(Path(spec.origin).parent / "bin" / "spark-submit")


def package_zip(dist: Path) -> Path:
    """This lakeio package as ``dist/lakeio.zip`` (what --py-files takes), caches left out."""
    import lakeio

    root = Path(lakeio.__file__).resolve().parent
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / "lakeio.zip"
    partial = dist / f".lakeio-{os.getpid()}.zip"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, Path("lakeio") / path.relative_to(root))
    partial.replace(target)  # a concurrent submit never sees half a zip
    return target


@cli.group()
def k8s() -> None:
    """Kubernetes: SparkApplication manifests for the Spark operator."""


@k8s.command("manifest", context_settings={"ignore_unknown_options": True})
@click.argument("driver", type=click.Path(exists=True, dir_okay=False))
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.option("--image", required=True, help="The image built from docker/Dockerfile.")
@click.option("--name", default=None, help="The SparkApplication's name; default the environment's spark.app_name.")
@click.option("--namespace", default=None, help="The namespace to name in the manifest.")
@click.option("--spark-version", default=None, help="The image's Spark version; default this pyspark's.")
@click.option("--app-root", default=k8s_manifests.APP_ROOT, show_default=True,
              help="Where the image holds lakeio.zip, jars/, deploy/ and conf/ (docker/install.sh PREFIX).")
@click.option("--conf-source", type=click.Choice(["image", "configmap"]), default="image", show_default=True,
              help="The conf folder baked in the image, or ConfigMaps of this --conf (written before the app).")
@click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE", help="Extra Spark conf (repeatable).")
@click.option("--executors", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--executor-cores", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--executor-memory", default="1g", show_default=True)
@click.option("--driver-cores", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--driver-memory", default="1g", show_default=True)
@click.option("--service-account", default=None, help="The driver's service account (it creates the executors).")
@click.option("--secret-env", default=None, help="A Secret whose keys become the pods' environment (credentials).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the manifest here; default stdout.")
@click.pass_obj
def k8s_manifest(state: _State, driver: str, arguments: tuple[str, ...], image: str, name: str | None,
                 namespace: str | None, spark_version: str | None, app_root: str, conf_source: str,
                 spark_conf: tuple[str, ...], executors: int, executor_cores: int, executor_memory: str,
                 driver_cores: int, driver_memory: str, service_account: str | None, secret_env: str | None,
                 output: Path | None) -> None:
    """A SparkApplication (sparkoperator.k8s.io/v1beta2) running DRIVER from the image with the
    conf, jars and arguments ``lakeio submit`` would pass; ARGUMENTS go to the driver (after --)."""
    import yaml

    lake = state.catalog
    job = spark_job(lake, driver, list(arguments), extra_conf=_placeholders(spark_conf))
    app_name = name or job.name
    maps = (k8s_manifests.conf_config_maps(Path(state.conf), app_name, app_root=app_root, namespace=namespace)
            if conf_source == "configmap" else [])
    resources = k8s_manifests.Resources(driver_cores=driver_cores, driver_memory=driver_memory, executors=executors,
                                        executor_cores=executor_cores, executor_memory=executor_memory)
    application = k8s_manifests.spark_application(
        dataclasses.replace(job, name=app_name), image=image,
        spark_version=spark_version or _pyspark_version(), namespace=namespace, app_root=app_root,
        resources=resources, service_account=service_account, secret_env=secret_env, conf_maps=maps)
    text = yaml.safe_dump_all([*maps, application], sort_keys=False, default_flow_style=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}: kubectl apply -f {output}", err=True)


def _pyspark_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyspark")
    except PackageNotFoundError as error:
        raise InvalidArgumentError("no pyspark here to take the Spark version from: pass --spark-version") from error


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("step", metavar="MODULE:FUNCTION")
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(state: _State, step: str, arguments: tuple[str, ...]) -> None:
    """Runs a pipeline step: FUNCTION(catalog, *ARGUMENTS) from MODULE, with the catalog bound to
    --env / $LAKEIO_ENV. The current directory is importable."""
    module_name, sep, function_name = step.partition(":")
    if not sep or not module_name or not function_name:
        raise click.BadParameter(f"{step!r} is not MODULE:FUNCTION", param_hint="MODULE:FUNCTION")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise click.BadParameter(f"cannot import {module_name!r}: {error}", param_hint="MODULE:FUNCTION") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise click.BadParameter(f"{module_name} has no function {function_name!r}", param_hint="MODULE:FUNCTION")
    function(state.catalog, *arguments)


def _column_list(columns: str | None) -> list[str] | None:
    return None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]


def _cell(value: Any) -> str:
    return "null" if value is None else str(value)


def _columns(header: list[str], rows: list[list[str]]) -> str:
    """Rows as aligned text columns under ``header``."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *rows])


def main() -> None:
    """The console script."""
    cli(prog_name="lakeio")
