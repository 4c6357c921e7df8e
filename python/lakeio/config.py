"""YAML -> typed, frozen models, with errors that name the file, the key and the likely fix.

A configuration folder holds ``lakeio.yaml`` (optional: per-environment settings) and any number
of resource files (every other ``*.yaml``/``*.yml``), each mapping dataset names to resources.
Every problem in every file is collected and raised together as one :class:`ConfigError`.

``${VAR}`` and ``${VAR:-default}`` in a string take the value of an environment variable; only the
active environment's values are expanded, so prod credentials need not exist on a laptop.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError, model_validator

from lakeio.errors import ConfigError

Format = Literal["delta", "parquet", "csv", "json"]
EngineName = Literal["auto", "arrow", "spark"]
SchemaMode = Literal["enforce", "merge", "overwrite"]
Compression = Literal["snappy", "zstd", "gzip", "none"]
DeltaCommits = Literal["conditional_put", "single_writer"]
SETTINGS_FILE = "lakeio.yaml"


class FrozenModel(BaseModel):
    """Every configuration model: unknown keys are errors, values cannot change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Settings(FrozenModel):
    """Where S3 is and who we are there; unset fields fall back to the standard AWS variables."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    # How the writers of one Delta table here agree on each commit. conditional_put: every writer
    # (delta-rs, and Spark through lakeio's log store) creates _delta_log/N.json only if it is absent,
    # so racing writers of either engine never overwrite each other's commit; a writer that would not
    # take part is refused. single_writer: Delta's default s3a log store, for a store without
    # conditional writes or Hadoop before 3.4.2: safe only while one writer at a time writes a table.
    delta_commits: DeltaCommits = "conditional_put"


class SparkSettings(FrozenModel):
    """How lakeio builds a Spark session when none is active (spark-submit brings its own)."""

    master: str = "local[*]"
    app_name: str = "lakeio"
    conf: dict[str, str] = Field(default_factory=dict)
    # Where results computed by Spark are staged as Parquet for Arrow to read (a folder every
    # executor and the driver can reach); default: a local temporary folder, for local masters.
    scratch_uri: str | None = None


class EnvironmentSettings(FrozenModel):
    """Settings shared by every dataset of one environment."""

    engine: EngineName = "auto"
    # engine=auto: reads whose pruned files total at most this many bytes run on Arrow, in-process.
    arrow_max_bytes: ByteSize = ByteSize(1024**3)
    s3: S3Settings = S3Settings()
    spark: SparkSettings = SparkSettings()
    metrics_sink: str = "logging"  # or a local path or s3:// URI for JSON-lines files (lakeio.validation.sink)


class Options(FrozenModel):
    """How a dataset's files are read and written. Set under ``options:`` in YAML (per resource,
    refined per environment) and overridable per call with ``options={...}``."""

    delimiter: str = Field(",", min_length=1, max_length=1)  # csv
    header: bool = True  # csv: the first line names the columns
    null_values: tuple[str, ...] = ("",)  # csv: strings read as null
    compression: Compression = "snappy"  # parquet, delta
    target_file_size: ByteSize = ByteSize(128 * 1024 * 1024)  # bytes per written file, roughly; "64MB" works
    schema_mode: SchemaMode = "enforce"  # enforce: refuse other columns/types; merge: add new columns

    FORMATS: typing.ClassVar[dict[str, tuple[str, ...]]] = {
        "delimiter": ("csv",), "header": ("csv",), "null_values": ("csv",), "compression": ("parquet", "delta"),
    }

    def misapplied(self, format: str) -> list[str]:
        """The options set here that do not apply to ``format``, each with the formats it applies to."""
        return [f"option {name!r} applies to {' and '.join(formats)} only, not {format}"
                for name, formats in self.FORMATS.items() if name in self.model_fields_set and format not in formats]

    def for_format(self, format: str) -> Options:
        """These options without those set for another format (a resource's Delta options do not
        reach its environment that reads a CSV sample)."""
        kept = {name: value for name, value in self.model_dump(exclude_unset=True).items()
                if format in self.FORMATS.get(name, (format,))}
        return Options.model_validate(kept)

    def merged(self, override: Mapping[str, Any] | Options | None) -> Options:
        """These options with the fields set in ``override`` replaced (validated)."""
        if not override:
            return self
        changes = override.model_dump(exclude_unset=True) if isinstance(override, Options) else dict(override)
        return Options.model_validate({**self.model_dump(exclude_unset=True), **changes})


class Binding(FrozenModel):
    """One dataset in one environment: where it lives and, optionally, which engine moves it, a
    format of its own (a sample environment can read a checked-in CSV of a Delta table) and options."""

    uri: str
    engine: EngineName | None = None
    format: Format | None = None
    options: Options = Options()


QUARANTINE_RUN_COLUMN = "lakeio_run_id"


class Quarantine(FrozenModel):
    """Where a write puts the rows that fail a check with ``on_fail: quarantine``: a dataset of the
    same format, ``name`` in the catalog, with its own binding per environment. Its rows are the
    failing rows, ``column`` (the names of the checks each failed) and ``lakeio_run_id`` (the run
    that wrote them, its partition column)."""

    name: str = Field(min_length=1)
    column: str = Field("lakeio_failed_checks", min_length=1)
    environments: dict[str, Binding]

    def resource(self, of: str, format: str) -> Resource:
        """The quarantine dataset as a resource of the catalog."""
        return Resource(format=format, partition_by=(QUARANTINE_RUN_COLUMN,), environments=self.environments,
                        description=f"rows of {of!r} that failed its contract (on_fail: quarantine)")


class Resource(FrozenModel):
    """A dataset as pipeline code names it, with every environment side by side."""

    format: Format
    partition_by: tuple[str, ...] = ()
    description: str = ""
    options: Options = Options()
    # The validation contract's file, relative to this resource file ("schema:" in YAML; see lakeio.validation).
    contract: str | None = Field(default=None, alias="schema")
    environments: dict[str, Binding]
    quarantine: Quarantine | None = None

    @model_validator(mode="after")
    def _options_fit_formats(self) -> Resource:
        problems = self.options.misapplied(self.format)
        for env, binding in self.environments.items():
            problems += [f"environments.{env}: {p}" for p in binding.options.misapplied(binding.format or self.format)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Settings(FrozenModel):
    environments: dict[str, EnvironmentSettings] = Field(default_factory=dict)


def load_config(folder: str | os.PathLike) -> tuple[Settings, dict[str, Resource], dict[str, Path]]:
    """Reads and validates every YAML file of a configuration folder.

    Returns:
        The settings, the resources by name, and the file each resource came from.

    Raises:
        ConfigError: listing every problem found, each with its file and key.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such configuration folder")
    problems: list[str] = []
    settings = Settings()
    resources: dict[str, Resource] = {}
    origins: dict[str, Path] = {}
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        try:
            document = read_yaml(path)
        except ConfigError as error:
            problems.append(str(error))
            continue
        if path.name == SETTINGS_FILE:
            settings = validate_model(Settings, document or {}, path, (), problems) or settings
            continue
        if document is None:
            continue
        if not isinstance(document, dict):
            problems.append(f"{path}: expected a mapping of dataset names to resources")
            continue
        for name, body in document.items():
            if name in origins:
                problems.append(f"{path}: {name}: dataset already defined in {origins[name]}")
                continue
            resource = validate_model(Resource, body, path, (name,), problems)
            if resource is not None:
                resources[name], origins[name] = resource, path
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings, resources, origins


def expand_variables(model: FrozenModel, where: str, builtins: Mapping[str, str] | None = None) -> Any:
    """Returns ``model`` with ``${VAR}`` expanded in every string field, recursively; ``builtins``
    (such as ``LAKEIO_CONF_DIR``) win over environment variables of the same name."""
    variables = {**os.environ, **(builtins or {})}

    def expand(value: Any, key: str) -> Any:
        if isinstance(value, str):
            return _expand_string(value, key, variables)
        if isinstance(value, BaseModel):  # only changed fields are updated: the others stay unset
            expanded = {k: expand(getattr(value, k), f"{key}.{k}") for k in type(value).model_fields}
            return value.model_copy(update={k: v for k, v in expanded.items() if v != getattr(value, k)})
        if isinstance(value, dict):
            return {k: expand(v, f"{key}.{k}") for k, v in value.items()}
        return value

    return expand(model, where)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_string(text: str, key: str, variables: Mapping[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        value = variables.get(name, default)
        if value is None:
            raise ConfigError(f"{key}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return value

    return _VARIABLE.sub(replace, text)


def effective_options(base: Options, override: Mapping[str, Any] | None, format: str, what: str) -> Options:
    """``base`` with a call's ``options={...}`` applied, checked as YAML options are.

    Raises:
        InvalidArgumentError: an unknown option (with the closest valid name), a wrong type, or an
            option that does not apply to ``format``.
    """
    from lakeio.errors import InvalidArgumentError

    try:
        options = base.merged(override)
    except ValidationError as error:
        problems = [f"options.{'.'.join(map(str, item['loc']))}: {_describe(Options, item)}" for item in error.errors()]
        raise InvalidArgumentError(f"{what}: {'; '.join(problems)}") from None
    misapplied = options.misapplied(format)
    if misapplied:
        raise InvalidArgumentError(f"{what}: {'; '.join(misapplied)}")
    return options


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: a key must be a plain value, not {key!r}") from None
            if key in seen:
                raise ConfigError(
                    f"key {key!r} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None


def validate_model(model: type[FrozenModel], body: Any, path: Path, prefix: tuple, problems: list[str]):
    try:
        return model.model_validate(body)
    except ValidationError as error:
        for item in error.errors():
            loc = prefix + tuple(item["loc"])
            key = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{path}: {key}: {_describe(model, item)}")
        return None


def _describe(model: type[FrozenModel], item: Mapping[str, Any]) -> str:
    kind, loc = item["type"], tuple(item["loc"])
    if kind == "extra_forbidden":
        allowed = _keys_at(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown key{suggestion} (valid keys: {', '.join(allowed)})"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", item["ctx"]["expected"])
        hint = difflib.get_close_matches(str(item["input"]), choices, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{item['input']!r} is not one of {', '.join(choices)}{suggestion}"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return str(item["ctx"]["error"])
    return f"{item['msg']} (got {item['input']!r})"


def _keys_at(model: type[FrozenModel], loc: tuple) -> list[str]:
    """The keys a model accepts at ``loc``, walking through nested models and dicts."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation
