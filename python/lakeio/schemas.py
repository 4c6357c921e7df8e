"""JSON Schemas of lakeio's YAML files, generated from the models that load them.

Three schemas, for editors (completion, hover text, errors while typing) and for CI:

- ``resources.schema.json``: a resource file (every ``*.yaml`` of a configuration folder but
  ``lakeio.yaml``), from :class:`lakeio.config.Resource`;
- ``lakeio.schema.json``: the settings file ``lakeio.yaml``, from :class:`lakeio.config.Settings`;
- ``contract.schema.json``: a validation contract, from the contract's pydantic models and its
  check registry (:data:`lakeio.validation.contract.COLUMN_CHECKS` and ``TABLE_CHECKS``).

The schemas describe the shape lakeio accepts: unknown keys, misspelled formats, engines, types,
checks and metrics, and values of the wrong kind fail. What depends on more than one key (a bound
of the column's type, a regex both engines read alike, ``min`` not above ``max``) is checked when
the catalog loads. They are written as JSON Schema draft-07, the draft editors' YAML support
(yaml-language-server) implements.

Regenerate the checked-in copies with ``python -m lakeio.schemas --write schemas``;
``tests/unit/test_schemas.py`` fails when they are stale.

Examples:
    >>> from lakeio.schemas import schemas
    >>> sorted(schemas())
    ['contract.schema.json', 'lakeio.schema.json', 'resources.schema.json']
    >>> contract = schemas()["contract.schema.json"]
    >>> contract["required"]
    ['columns']
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lakeio.config import (
    Binding,
    EnvironmentSettings,
    LineageSettings,
    MetricsSinkSettings,
    Options,
    Quarantine,
    Resource,
    S3Settings,
    Settings,
    SparkSettings,
)
from lakeio.validation import contract as _contract

DRAFT = "http://json-schema.org/draft-07/schema#"
RESOURCES_FILE = "resources.schema.json"
SETTINGS_FILE = "lakeio.schema.json"
CONTRACT_FILE = "contract.schema.json"

# Hover text for fields whose models say it in comments; a field named here that a model no longer
# has is an error, so this table cannot outlive the models.
_FIELD_DOCS: dict[type[BaseModel], dict[str, str]] = {
    Resource: {
        "format": "The dataset's format: delta, parquet, csv or json (JSON lines). A binding may have its own.",
        "partition_by": "Partition columns, as hive folders: year=2013/month=1/.",
        "description": "What the dataset holds, for people.",
        "options": "How files are read and written; refined by a binding's options and by a call's options={...}.",
        "schema": "The dataset's validation contract: a YAML file, relative to this resource file "
                  "(keep contracts in a subfolder: every top-level *.yaml of the folder is read as resources).",
        "environments": "One binding per environment (local, sample, test, prod, ...): where the dataset lives there.",
        "quarantine": "Where writes put the rows failing a check with on_fail: quarantine: a dataset of the same "
                      "format, with its own name and bindings.",
    },
    Quarantine: {
        "name": "The quarantine dataset's name in the catalog (read it like any dataset).",
        "column": "The column holding the names of the checks each quarantined row failed.",
        "environments": "One binding per environment: where the quarantined rows live there.",
    },
    Binding: {
        "uri": "Where the dataset lives: a local path (relative to the current directory) or s3://bucket/prefix. "
               "{placeholder} segments are filled from keyword arguments; ${VAR} and ${VAR:-default} from "
               "environment variables; ${LAKEIO_CONF_DIR} is the configuration folder.",
        "engine": "The engine for this dataset in this environment: auto, arrow or spark.",
        "format": "A format of this environment's own (e.g. a checked-in CSV sample of a Delta table).",
        "options": "Options of this environment, over the resource's.",
    },
    Options: {
        "delimiter": "csv: the field delimiter, one character.",
        "header": "csv: the first line names the columns.",
        "null_values": "csv: strings read as null.",
        "compression": "parquet, delta: snappy, zstd, gzip or none.",
        "target_file_size": "Bytes per written file, roughly: \"64MB\", \"1GiB\" or a number.",
        "schema_mode": "enforce: a write with other columns or types is refused; merge (Delta): new columns are "
                       "added; overwrite (with mode=\"overwrite\"): the schema is replaced.",
    },
    Settings: {"environments": "Settings per environment, by name."},
    EnvironmentSettings: {
        "engine": "The environment's engine: auto (Spark data to Spark, small pruned reads to Arrow), arrow or spark.",
        "arrow_max_bytes": "engine: auto: reads whose pruned files total at most this many bytes run on Arrow.",
        "s3": "Where S3 is; keys left out come from the standard AWS variables.",
        "spark": "How lakeio builds a Spark session when none is active (spark-submit brings its own).",
        "metrics_sink": "Where validation metrics go: logging (the lakeio.metrics logger), a local path or "
                        "s3:// URI for JSON-lines files, or {uri, format: delta, dataset, on_error}.",
        "lineage": "OpenLineage run events of reads and writes (off by default).",
    },
    MetricsSinkSettings: {
        "uri": "logging (the lakeio.metrics logger, no history), a local path or an s3:// URI.",
        "format": "jsonl: one JSON-lines file per run under the uri; delta: one Delta table at the uri, "
                  "appended per run.",
        "dataset": "The catalog name a Delta metrics history reads as (lake.read(...)).",
        "on_error": "log: a sink that cannot be written is logged and noted on the I/O record, the data's write "
                    "goes on; raise: it fails the call.",
    },
    LineageSettings: {
        "transport": "none (the default), console, file or http (needs the lineage extra).",
        "namespace": "The OpenLineage namespace of the jobs.",
        "job": "The job name (the pipeline step); default $LAKEIO_JOB, else <dataset>.<operation>.",
        "path": "transport file: the file events are appended to, one JSON event per line.",
        "url": "transport http: the lineage server, e.g. http://marquez:5000.",
        "endpoint": "transport http: the path events are posted to.",
        "api_key": "transport http: sent as a bearer token (write ${VAR} to take it from the environment).",
        "timeout": "transport http: seconds per request.",
        "retries": "transport http: retries of a failed request, with backoff (the client's default: 5).",
    },
    S3Settings: {
        "endpoint_url": "The S3 endpoint, e.g. http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL).",
        "region": "The region (default: $AWS_REGION).",
        "access_key_id": "Default: $AWS_ACCESS_KEY_ID.",
        "secret_access_key": "Default: $AWS_SECRET_ACCESS_KEY.",
        "session_token": "Default: $AWS_SESSION_TOKEN.",
        "delta_commits": "How writers of one Delta table agree on each commit: conditional_put (default: every "
                         "writer, Arrow or Spark, creates the commit file only if absent, so racing writers lose "
                         "nothing; writers that would not take part are refused) or single_writer (a store "
                         "without conditional writes: one writer at a time).",
    },
    SparkSettings: {
        "master": "The master of a session lakeio starts itself.",
        "app_name": "The application name of a session lakeio starts itself.",
        "conf": "Spark settings of a session lakeio starts itself (values are strings: quote numbers).",
        "scratch_uri": "Where results computed by Spark are staged as Parquet for Arrow to read: a folder the "
                       "driver and every executor reach (default: a local temporary folder); on Spark Connect, one the "
                       "server and this process both reach.",
        "remote": "A Spark Connect server, sc://host:port: the Spark engine runs there (the server's own "
                  "conf must bring Delta and lakeio's plugin; see the Spark Connect guide).",
    },
    _contract.ContractSpec: {
        "description": "What the dataset holds, for people.",
        "on_fail": "What a failing row-level check does: refuse (the write fails, nothing lands) or quarantine "
                   "(its failing rows go to the resource's quarantine dataset, the others are written); a "
                   "check's own on_fail wins. Table checks always refuse.",
        "extra_columns": "A column the contract does not list: error (fails the contract), warning, or allow.",
        "columns": "Every column, by name, with its type, nullability, checks and metrics.",
        "checks": "Table checks: row_count (bounds, or history bounds against earlier runs) and compound unique.",
    },
    _contract.ColumnSpec: {
        "type": "The logical type: string, boolean, int8..int64, float32, float64, decimal(p,s), date, timestamp "
                "(an instant, with a time zone) or timestamp_ntz (a wall-clock time).",
        "nullable": "false adds a not_null check (severity error).",
        "cast": "Cast a numeric column of another numeric type to this one; a value that does not survive fails.",
        "description": "What the column holds, for people.",
        "checks": "Column checks: a name (not_null, unique) or a one-key mapping {check: parameters}.",
        "metrics": "Metrics reported on every validation, one record each.",
    },
}

# A bound or set member: YAML scalars (dates and timestamps are written as ISO 8601 strings).
_BOUND = {"type": ["string", "number"]}
_MEMBER = {"type": ["string", "number", "boolean"]}
# Checks whose parameters must name at least one of these keys (the loader says which it needs).
_HISTORY_BOUNDS = ("max_change", "max_delta", "max_deviations")
_ONE_OF_REQUIRED: dict[type[_contract.Check], tuple[str, ...]] = {
    _contract.RowCount: ("min", "max", *_HISTORY_BOUNDS),
    **{check: _HISTORY_BOUNDS for check in _contract.HISTORY_CHECKS}}


def schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by the file name it is checked in under."""
    return {CONTRACT_FILE: contract_schema(), SETTINGS_FILE: settings_schema(), RESOURCES_FILE: resources_schema()}


def resources_schema() -> dict[str, Any]:
    """The schema of a resource file: dataset names mapped to resources."""
    definitions = _definitions(Resource)
    _per_format_options(definitions)
    return _document(
        "lakeio resource file",
        "Datasets by name, each with every environment side by side (a resource file of a lakeio "
        "configuration folder: every *.yaml but lakeio.yaml).",
        {"type": ["object", "null"], "additionalProperties": {"$ref": "#/definitions/Resource"}},
        definitions,
    )


def settings_schema() -> dict[str, Any]:
    """The schema of ``lakeio.yaml``: settings per environment."""
    definitions = _definitions(Settings)
    body = definitions.pop("Settings")
    body["type"] = ["object", "null"]  # an empty lakeio.yaml is no settings
    return _document("lakeio settings (lakeio.yaml)", "Settings per environment of a lakeio configuration folder.",
                     body, definitions)


def contract_schema() -> dict[str, Any]:
    """The schema of a validation contract, with the check vocabulary of the check registry."""
    definitions = {**_definitions(_contract.ContractSpec), **_definitions(_contract.ColumnSpec)}
    definitions["Column"] = definitions.pop("ColumnSpec")
    body = definitions.pop("ContractSpec")
    body["properties"]["columns"].update(additionalProperties={"$ref": "#/definitions/Column"})
    body["properties"]["checks"]["items"] = _checks(_contract.TABLE_CHECKS)
    column = definitions["Column"]["properties"]
    column["type"] = {**_logical_type(), "description": column["type"]["description"]}
    column["checks"]["items"] = _checks(_contract.COLUMN_CHECKS)
    column["metrics"].update(items={"enum": list(_contract.METRICS)}, uniqueItems=True)
    return _document("lakeio validation contract",
                     "What a dataset must look like: columns with logical types, checks and metrics, and table "
                     "checks (a contract file, named by a resource's schema: key).", body, definitions)


def write(directory: str | Path) -> list[Path]:
    """Writes every schema into ``directory`` (created if missing); returns the files written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(dumps(schema), encoding="utf-8")
        written.append(path)
    return written


def dumps(schema: dict[str, Any]) -> str:
    """A schema as its checked-in file's text."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakeio.schemas", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="DIR", help="write the schemas into DIR (default: print them)")
    args = parser.parse_args(argv)
    if args.write:
        for path in write(args.write):
            print(path)
    else:
        print(json.dumps(schemas(), indent=2, ensure_ascii=False))
    return 0


# -- building blocks -----------------------------------------------------------------------------

def _document(title: str, description: str, body: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    schema = {"$schema": DRAFT, "title": title, "description": description, **body, "definitions": definitions}
    return _draft7(schema)


def _definitions(model: type[BaseModel]) -> dict[str, Any]:
    """The model and the models it uses, by class name, with their hover text."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    definitions[model.__name__] = schema
    for name, body in definitions.items():
        documented = [fields for m, fields in _FIELD_DOCS.items() if m.__name__ == name]
        for field, text in (documented[0] if documented else {}).items():
            body["properties"][field]["description"] = text  # KeyError: the model lost a documented field
        body.pop("title", None)
        if "description" in body:  # a class docstring, which Python 3.13 dedents itself
            body["description"] = inspect.cleandoc(body["description"])
        for field in body.get("properties", {}).values():
            field.pop("title", None)
    return definitions


def _per_format_options(definitions: dict[str, Any]) -> None:
    """An option of another format is refused (as ``Options.misapplied`` does): a resource's options
    against its format, a binding's against its own format, else the resource's."""
    formats = typing.get_args(typing.get_args(Binding.model_fields["format"].annotation)[0])
    resource_rules, binding_rules = [], []
    for format in formats:
        refused = {name: {"not": {}, "description": f"option {name!r} applies to {' and '.join(applies)} only"}
                   for name, applies in Options.FORMATS.items() if format not in applies}
        if not refused:
            continue
        options = {"properties": {"options": {"properties": refused}}}
        binding_rules.append({"if": {"properties": {"format": {"const": format}}, "required": ["format"]},
                              "then": options})
        own_format = {"properties": {"format": {"type": "string"}}, "required": ["format"]}
        resource_rules.append({
            "if": {"properties": {"format": {"const": format}}, "required": ["format"]},
            "then": {"properties": {**options["properties"], "environments": {
                "additionalProperties": {"if": {"not": own_format}, "then": options}}}},
        })
    definitions["Resource"]["allOf"] = resource_rules
    definitions["Binding"]["allOf"] = binding_rules


def _logical_type() -> dict[str, Any]:
    """``type:`` of a column: the names LogicalType.parse accepts (any case, spaces around)."""
    def any_case(text: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)

    names = "|".join(any_case(name) for name in _contract.SIMPLE_TYPES)
    decimal = any_case("decimal") + r"\(\s*[0-9]+\s*,\s*[0-9]+\s*\)"
    return {"anyOf": [{"enum": [*_contract.SIMPLE_TYPES, "decimal(10,2)"]},
                      {"type": "string", "pattern": rf"^\s*(?:{names}|{decimal})\s*$"}]}


def _checks(registry: dict[str, type[_contract.Check]]) -> dict[str, Any]:
    """One entry of a ``checks:`` list: a bare name, or ``{name: parameters}`` in any form the
    loader accepts (a mapping, the shorthand scalar or list, ``null``, ``between``'s pair)."""
    bare, forms = [], {}
    for name, check in registry.items():
        parameters = _parameters(check)
        needs_some = bool(parameters.get("required")) or check in _ONE_OF_REQUIRED
        accepted = [parameters]
        if check.shorthand is not None:
            accepted.append(copy.deepcopy(parameters["properties"][check.shorthand]))
        if check is _contract.Between:
            accepted.append({"type": "array", "items": _BOUND, "minItems": 2, "maxItems": 2,
                             "description": "[min, max], both included"})
        if not needs_some:
            bare.append(name)
            accepted.append({"type": "null"})
        forms[name] = {"description": inspect.cleandoc(check.__doc__ or ""), "anyOf": accepted}  # 3.13 dedents __doc__ itself
    mapping = {"type": "object", "minProperties": 1, "maxProperties": 1,
               "propertyNames": {"enum": list(registry)}, "properties": forms}
    return {"anyOf": [{"enum": bare}, mapping]} if bare else mapping


def _parameters(check: type[_contract.Check]) -> dict[str, Any]:
    schema = check.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    properties = schema["properties"]
    for field in ("value", "min", "max"):
        if field in properties and "type" not in properties[field] and "anyOf" not in properties[field]:
            properties[field].update(_BOUND)
    if "values" in properties:
        properties["values"]["items"] = _MEMBER
    for body in properties.values():
        body.pop("title", None)
    required = _ONE_OF_REQUIRED.get(check)
    if required:
        schema["anyOf"] = [{"required": [field]} for field in required]
    return schema


def _draft7(node: Any) -> Any:
    """pydantic writes ``$ref`` beside other keys, which draft-07 ignores: wrap it in ``allOf``."""
    if isinstance(node, dict):
        node = {key: _draft7(value) for key, value in node.items()}
        if "$ref" in node and len(node) > 1:
            ref = node.pop("$ref")
            node["allOf"] = [{"$ref": ref}, *node.get("allOf", [])]
        return node
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    return node


if __name__ == "__main__":
    sys.exit(main())
