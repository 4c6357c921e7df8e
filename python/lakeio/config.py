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
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lakeio.errors import ConfigError

Format = Literal["delta", "parquet"]
EngineName = Literal["auto", "arrow", "spark"]
SETTINGS_FILE = "lakeio.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Settings(_Model):
    """Where S3 is and who we are there; unset fields fall back to the standard AWS variables."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None


class SparkSettings(_Model):
    """How lakeio builds a Spark session when none is active (spark-submit brings its own)."""

    master: str = "local[*]"
    app_name: str = "lakeio"
    conf: dict[str, str] = Field(default_factory=dict)


class EnvironmentSettings(_Model):
    """Settings shared by every dataset of one environment."""

    engine: EngineName = "auto"
    s3: S3Settings = S3Settings()
    spark: SparkSettings = SparkSettings()
    metrics_sink: str = "logging"  # or a local path or s3:// URI for JSON-lines files (lakeio.validation.sink)


class Binding(_Model):
    """One dataset in one environment: where it lives and, optionally, which engine moves it."""

    uri: str
    engine: EngineName | None = None


class Resource(_Model):
    """A dataset as pipeline code names it, with every environment side by side."""

    format: Format
    partition_by: tuple[str, ...] = ()
    description: str = ""
    # The validation contract's file, relative to this resource file ("schema:" in YAML; see lakeio.validation).
    contract: str | None = Field(default=None, alias="schema")
    environments: dict[str, Binding]


class Settings(_Model):
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
            document = _read_yaml(path)
        except ConfigError as error:
            problems.append(str(error))
            continue
        if path.name == SETTINGS_FILE:
            settings = _validate(Settings, document or {}, path, (), problems) or settings
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
            resource = _validate(Resource, body, path, (name,), problems)
            if resource is not None:
                resources[name], origins[name] = resource, path
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings, resources, origins


def expand_variables(model: _Model, where: str) -> Any:
    """Returns ``model`` with ``${VAR}`` expanded in every string field, recursively."""

    def expand(value: Any, key: str) -> Any:
        if isinstance(value, str):
            return _expand_string(value, key)
        if isinstance(value, BaseModel):
            return value.model_copy(
                update={k: expand(getattr(value, k), f"{key}.{k}") for k in type(value).model_fields}
            )
        if isinstance(value, dict):
            return {k: expand(v, f"{key}.{k}") for k, v in value.items()}
        return value

    return expand(model, where)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_string(text: str, key: str) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if value is None:
            raise ConfigError(f"{key}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return value

    return _VARIABLE.sub(replace, text)


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


def _read_yaml(path: Path) -> Any:
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


def _validate(model: type[_Model], body: Any, path: Path, prefix: tuple, problems: list[str]):
    try:
        return model.model_validate(body)
    except ValidationError as error:
        for item in error.errors():
            loc = prefix + tuple(item["loc"])
            key = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{path}: {key}: {_describe(model, item)}")
        return None


def _describe(model: type[_Model], item: Mapping[str, Any]) -> str:
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
    return f"{item['msg']} (got {item['input']!r})"


def _keys_at(model: type[_Model], loc: tuple) -> list[str]:
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
