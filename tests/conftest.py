"""Fixtures both test suites share."""

from __future__ import annotations

import pyarrow.dataset as pads
import pytest


@pytest.fixture
def write_dataset_fails(monkeypatch):
    """``write_dataset_fails(after, message)`` makes pyarrow's ``write_dataset`` raise
    ``OSError(message)`` once it has written ``after`` files; returns the list of the files it wrote."""

    def install(after: int, message: str) -> list[str]:
        real, seen = pads.write_dataset, []

        def failing(*args, file_visitor=None, **kwargs):
            def visit(file):
                if file_visitor is not None:
                    file_visitor(file)
                seen.append(file.path)
                if len(seen) == after:
                    raise OSError(message)
            return real(*args, file_visitor=visit, **kwargs)

        monkeypatch.setattr(pads, "write_dataset", failing)
        return seen

    return install


@pytest.fixture(scope="session")
def openlineage_errors():
    """``openlineage_errors(event)`` lists what in one OpenLineage event (a JSON dict) breaks the spec.

    The spec's JSON Schemas are not shipped by any package reachable here (openlineage-python, its
    sdist, openlineage-java and its sources jar carry none), so the schemas are rebuilt from the
    client's model classes, which openlineage-python generates from those JSON Schemas: each
    ``$defs`` class with its required fields and types, enums, and the formats the spec names
    (date-time, uri, uuid). The event is checked against ``RunEvent`` and each facet against the
    class its ``_schemaURL`` names, with ``jsonschema``'s Draft 2020-12 validator.
    """
    import enum
    import importlib
    import pkgutil
    import types
    import typing
    import urllib.parse

    import attrs
    import jsonschema
    import openlineage.client.generated as generated

    classes: dict[str, type] = {}
    for module in pkgutil.iter_modules(generated.__path__):
        loaded = importlib.import_module(f"{generated.__name__}.{module.name}")
        classes.update({name: value for name, value in vars(loaded).items() if attrs.has(value)})
    formats = {"eventTime": "date-time", "producer": "uri", "schemaURL": "uri", "_producer": "uri",
               "_schemaURL": "uri", "runId": "uuid"}

    def json_type(hint) -> dict:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [json_type(a) for a in args]}
        if hint is type(None):
            return {"type": "null"}
        if origin is list:
            return {"type": "array", "items": json_type(args[0]) if args else {}}
        if origin is dict:
            return {"type": "object", "additionalProperties": json_type(args[1]) if args else {}}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [member.value for member in hint]}
        if isinstance(hint, type) and attrs.has(hint):
            # a facet map's values are any facet of that kind: checked on their own, by _schemaURL
            return {"type": "object"} if hint.__name__.endswith("Facet") else {"$ref": f"#/$defs/{hint.__name__}"}
        return {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
                bool: {"type": "boolean"}}.get(hint, {})

    definitions = {}
    for name, cls in classes.items():
        hints = typing.get_type_hints(cls)
        properties, required = {}, []
        for field in attrs.fields(cls):
            properties[field.name] = {**json_type(hints[field.name]), **(
                {"format": formats[field.name]} if field.name in formats else {})}
            if field.default is attrs.NOTHING:
                required.append(field.name)
        definitions[name] = {"type": "object", "properties": properties, "required": required}
    checker = jsonschema.FormatChecker()  # date-time and uuid built in; uri is not, without extra packages

    @checker.checks("uri")
    def _uri(value) -> bool:
        return not isinstance(value, str) or bool(urllib.parse.urlparse(value).scheme)

    def errors(event: dict) -> list[str]:
        found = []

        def check(document, definition: str, where: str):
            schema = {"$ref": f"#/$defs/{definition}", "$defs": definitions}
            validator = jsonschema.Draft202012Validator(schema, format_checker=checker)
            found.extend(f"{where}{'.' if e.path else ''}{'.'.join(map(str, e.path))}: {e.message}"
                         for e in validator.iter_errors(document))

        check(event, "RunEvent", "event")

        def facets(node, where: str):
            if isinstance(node, dict):
                url = node.get("_schemaURL")
                if isinstance(url, str) and "#/$defs/" in url:
                    name = url.rsplit("/", 1)[-1]
                    if name not in definitions:
                        found.append(f"{where}: no spec class {name} for {url}")
                    else:
                        check(node, name, where)
                for key, value in node.items():
                    facets(value, f"{where}.{key}")
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    facets(value, f"{where}[{index}]")

        facets(event, "event")
        return found

    return errors
