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
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from lakeio.errors import ConfigError

Format = Literal["delta", "parquet", "csv", "json"]
EngineName = Literal["auto", "arrow", "spark"]
SchemaMode = Literal["enforce", "merge", "overwrite"]
Compression = Literal["snappy", "zstd", "gzip", "none"]
DeltaCommits = Literal["conditional_put", "single_writer"]
SETTINGS_FILE = "lakeio.yaml"
# The URI schemes a binding may use (lakeio.storage reaches each): a local path, file:// or S3.
URI_SCHEMES = ("", "file", "s3", "s3a")
# Hostile YAML stops here, with a short message: a document this deep or this large (aliases
# counted as often as they are used, the "billion laughs") is not a configuration.
MAX_YAML_DEPTH = 100
MAX_YAML_NODES = 100_000


class FrozenModel(BaseModel):
    """Every configuration model: unknown keys are errors, values cannot change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Settings(FrozenModel):
    """Where S3 is and who we are there; unset fields fall back to the standard AWS variables."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    # Secrets print as '**********' in every repr, dump and error; .get_secret_value() reads them.
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
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
    # executor and the driver can reach; on Spark Connect, the server and this process); default: a
    # local temporary folder, for local masters.
    scratch_uri: str | None = None
    # A Spark Connect server (sc://host:port[/;param=value...]): the Spark engine runs there, through
    # the DataFrame API only (lakeio.spark.connect); master and the server-side conf are the server's.
    remote: str | None = Field(None, pattern=r"^sc://[^/\s]+")


class MetricsSinkSettings(FrozenModel):
    """Where validation metrics go (:mod:`lakeio.validation.sink`), and what a sink that cannot be
    written does. A plain string in YAML is short for ``{uri: ...}``."""

    uri: str = "logging"  # "logging" (the lakeio.metrics logger), a local path or an s3:// URI
    format: Literal["jsonl", "delta"] = "jsonl"  # at a uri: one JSON-lines file per run, or one Delta table
    dataset: str = Field("lakeio_metrics", min_length=1)  # the catalog name a Delta history reads as
    on_error: Literal["log", "raise"] = "log"  # log: the data's write goes on; raise: the sink's error is fatal

    @model_validator(mode="after")
    def _delta_needs_a_location(self) -> MetricsSinkSettings:
        if self.format == "delta" and self.uri == "logging":
            raise ValueError("format delta needs a uri: a local path or s3:// URI for the metrics table")
        return self


LineageTransport = Literal["none", "console", "file", "http"]


class LineageSettings(FrozenModel):
    """OpenLineage run events of reads and writes (:mod:`lakeio.lineage`); off by default."""

    transport: LineageTransport = "none"
    namespace: str = Field("lakeio", min_length=1)  # the jobs' namespace
    job: str | None = None  # the pipeline step; default $LAKEIO_JOB, else the dataset and operation
    path: str | None = None  # transport file: the file events are appended to, one JSON per line
    url: str | None = None  # transport http: the lineage server, e.g. http://marquez:5000
    endpoint: str = "api/v1/lineage"  # transport http: the path events are posted to
    api_key: SecretStr | None = None  # transport http: sent as a bearer token
    timeout: float = Field(5.0, gt=0)  # transport http: seconds per request
    retries: int = Field(5, ge=0, le=20)  # transport http: retries of a failed request (with backoff)

    @model_validator(mode="after")
    def _transport_needs(self) -> LineageSettings:
        if self.transport == "file" and not self.path:
            raise ValueError("transport file needs a path")
        if self.transport == "http" and not self.url:
            raise ValueError("transport http needs a url")
        return self


class EnvironmentSettings(FrozenModel):
    """Settings shared by every dataset of one environment."""

    engine: EngineName = "auto"
    # engine=auto: reads whose pruned files total at most this many bytes run on Arrow, in-process.
    arrow_max_bytes: ByteSize = ByteSize(1024**3)
    s3: S3Settings = S3Settings()
    spark: SparkSettings = SparkSettings()
    # "logging", a local path or s3:// URI for JSON-lines files, or the full form (a Delta table, on_error)
    metrics_sink: str | MetricsSinkSettings = "logging"
    lineage: LineageSettings = LineageSettings()

    @property
    def metrics(self) -> MetricsSinkSettings:
        """``metrics_sink`` in its full form."""
        sink = self.metrics_sink
        return sink if isinstance(sink, MetricsSinkSettings) else MetricsSinkSettings(uri=sink)


class Options(FrozenModel):
    """How a dataset's files are read and written. Set under ``options:`` in YAML (per resource,
    refined per environment) and overridable per call with ``options={...}``."""

    delimiter: str = Field(",", min_length=1, max_length=1)  # csv
    header: bool = True  # csv: the first line names the columns
    null_values: tuple[str, ...] = ("",)  # csv: strings read as null
    compression: Compression = "snappy"  # parquet, delta
    # Bytes per written file, roughly; "64MB" works. At least 1 KiB: below that every row is a file.
    target_file_size: ByteSize = Field(ByteSize(128 * 1024 * 1024), ge=1024)
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

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        scheme = uri_scheme(uri)
        if scheme is not None and scheme not in URI_SCHEMES:
            raise ValueError(f"{uri!r}: unsupported URI scheme {scheme!r}; use a local path, file:// or s3://")
        return uri


def uri_scheme(uri: str) -> str | None:
    """The scheme of ``uri`` (``""`` for a local path), or None while ``${VAR}`` may still supply it."""
    if "${" in uri.split("/", 1)[0]:
        return None
    return urlparse(uri).scheme.lower()


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
            if not isinstance(name, str):
                problems.append(f"{path}: {name}: a dataset name is text, not {type(name).__name__} "
                                f"(quote it: '{name}':)")
                continue
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
            return _expand_string(value, key, variables, uri=key.endswith(".uri"))
        if isinstance(value, SecretStr):
            return SecretStr(_expand_string(value.get_secret_value(), key, variables))
        if isinstance(value, BaseModel):  # only changed fields are updated: the others stay unset
            expanded = {k: expand(getattr(value, k), f"{key}.{k}") for k in type(value).model_fields}
            return value.model_copy(update={k: v for k, v in expanded.items() if v != getattr(value, k)})
        if isinstance(value, dict):
            return {k: expand(v, f"{key}.{k}") for k, v in value.items()}
        return value

    return expand(model, where)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_string(text: str, key: str, variables: Mapping[str, str], uri: bool = False) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        value = variables.get(name, default)
        if value is None:
            raise ConfigError(f"{key}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        before, after = text[:match.start()], text[match.end():]
        if uri and not value.strip("/") and (not before or before.endswith("/")) and (not after or after.startswith("/")):
            raise ConfigError(f"{key}: environment variable {name} is empty, so the URI {text!r} would name the "
                              "folder above the dataset (an overwrite there would replace the datasets beside it); "
                              "set it, or give a default that is not empty")
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
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently, and hostile
    documents (too deep, or too many values once aliases are expanded) before building anything."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"line {mark.line + 1}: nested more than {MAX_YAML_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        document = super().compose_document()
        if document is not None and _expanded_size(document) > MAX_YAML_NODES:
            raise ConfigError(f"more than {MAX_YAML_NODES:,} values once its aliases (*name) are expanded; "
                              "an alias bomb is not a configuration")
        return document

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: a key must be a plain value, "
                                  f"not {short_repr(key)}") from None
            if key in seen:
                raise ConfigError(
                    f"key {short_repr(key)} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` holds with every alias expanded, counted without expanding them (an
    alias is the same node object again, so each node's size is computed once)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative: the depth is bounded already, but a stack costs nothing
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = ([part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = min(1 + sum(sizes.get(id(child), 0) for child in children), MAX_YAML_NODES + 1)
    return sizes[id(root)]


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message shows the value, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def read_yaml(path: Path) -> Any:
    """One YAML file as plain values, or a :class:`ConfigError` naming the file and where it is wrong."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"{path}: not UTF-8: byte {raw[error.start:error.start + 1]!r} at offset {error.start} "
                          f"(line {line}); save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
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
    """``body`` as a ``model``, or None after appending every problem (file and key each) to ``problems``.

    A misspelled key hides nothing under it: its body is also validated as the key it is closest
    to, and the problems found there are reported under the key as written.
    """
    try:
        return model.model_validate(body)
    except ValidationError:
        for loc, message in _problems(model, body):
            key = ".".join(str(part) for part in prefix + loc) or "(top level)"
            problems.append(f"{path}: {key}: {message}")
        return None


def _problems(model: type[FrozenModel], body: Any, retries: int = 3) -> list[tuple[tuple, str]]:
    """Every problem of ``body`` as ``model``: (location, message), those under misspelled keys included."""
    try:
        model.model_validate(body)
        return []
    except ValidationError as error:
        items = error.errors()
    found = [(tuple(item["loc"]), _describe(model, item)) for item in items]
    for item in items:
        loc = tuple(item["loc"])
        if item["type"] != "extra_forbidden" or retries == 0:
            continue
        hint = difflib.get_close_matches(str(loc[-1]), _keys_at(model, loc[:-1]), n=1)
        parent = _at(body, loc[:-1])
        if not hint or not isinstance(parent, dict) or hint[0] in parent:
            continue
        corrected = _replaced(body, loc[:-1], {hint[0] if k == loc[-1] else k: v for k, v in parent.items()})
        fixed = loc[:-1] + (hint[0],)
        found += [(loc + inner[len(fixed):], message) for inner, message in _problems(model, corrected, retries - 1)
                  if inner[:len(fixed)] == fixed and len(inner) > len(fixed)]
    return list(dict.fromkeys(found))


def _at(body: Any, loc: tuple) -> Any:
    for part in loc:
        body = body[part] if isinstance(body, (dict, list)) else None
    return body


def _replaced(body: Any, loc: tuple, value: Any) -> Any:
    """A copy of ``body`` with the value at ``loc`` replaced (the original is left as it is)."""
    if not loc:
        return value
    head, rest = loc[0], loc[1:]
    if isinstance(body, dict):
        return {**body, head: _replaced(body[head], rest, value)}
    copy = list(body)
    copy[head] = _replaced(body[head], rest, value)
    return copy


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
        return f"{short_repr(item['input'])} is not one of {', '.join(choices)}{suggestion}"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return str(item["ctx"]["error"])
    return f"{item['msg']} (got {short_repr(item['input'])})"


def _keys_at(model: type[FrozenModel], loc: tuple) -> list[str]:
    """The keys a model accepts at ``loc``, walking through nested models and dicts."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
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
