"""The declared seams hold: engines satisfy the protocol, nobody imports another module's private
names, requests sit in a leaf module, and everything that needs a JVM sits in ``lakeio.spark``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import lakeio
from lakeio.config import EnvironmentSettings
from lakeio.engines import Engine, SparkCapable, create_engine, engine_names, register_engine
from lakeio.errors import InvalidArgumentError
from lakeio.storage import Storage

PACKAGE = Path(lakeio.__file__).parent


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("lakeio", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def imports_of(tree: ast.Module) -> list[tuple[str, str | None]]:
    """(module, name) for every ``from lakeio.x import y`` and ``import lakeio.x`` in ``tree``."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lakeio"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.startswith("lakeio")]
    return found


def test_no_module_imports_a_private_name_of_another():
    offenders = [f"{module}: from {source} import {name}"
                 for module, tree in modules().items() for source, name in imports_of(tree)
                 if name and name.startswith("_") and not name.startswith("__") and source != module]
    assert offenders == []


def test_requests_are_a_leaf_that_imports_no_engine_frame_or_catalog():
    sources = {source for source, _ in imports_of(modules()["lakeio.requests"])}
    assert not sources & {"lakeio.engines", "lakeio.engines.arrow", "lakeio.frame", "lakeio.catalog"}
    assert not any(source.startswith("lakeio.spark") for source in sources)


def test_only_the_spark_package_imports_pyspark_py4j_or_delta_spark():
    jvm_libraries = ("pyspark", "py4j", "delta")
    offenders = []
    for module, tree in modules().items():
        if module.startswith("lakeio.spark"):
            continue
        type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and ast.unparse(block.test) == "TYPE_CHECKING" for node in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{module}: {name}" for name in names if name.split(".")[0] in jvm_libraries]
    assert offenders == []


def test_only_the_jvm_door_touches_the_gateway():
    # `_jvm` and `_jsc` are py4j's handles on the JVM: one module uses them.
    users = sorted(module for module, tree in modules().items()
                   if any(isinstance(node, ast.Attribute) and node.attr in ("_jvm", "_jsc") for node in ast.walk(tree)))
    assert users == ["lakeio.spark.jvm"]


@pytest.mark.parametrize("name", ["arrow", "spark"])
def test_every_registered_engine_satisfies_the_protocol(name):
    settings = EnvironmentSettings()
    engine = create_engine(name, settings, Storage(settings.s3))  # making one starts no JVM
    assert isinstance(engine, Engine) and engine.name == name
    assert isinstance(engine, SparkCapable) is (name == "spark")
    for method in ("read_arrow", "read_batches", "count", "schema", "write", "merge"):
        declared = inspect.signature(getattr(Engine, method))
        assert list(inspect.signature(getattr(engine, method)).parameters) == list(declared.parameters)[1:], method


def test_the_registry_makes_engines_by_name_and_takes_new_ones():
    assert {"arrow", "spark"} <= set(engine_names())
    with pytest.raises(InvalidArgumentError, match="no engine 'duckdb'; engines: arrow, spark"):
        create_engine("duckdb", EnvironmentSettings(), Storage(EnvironmentSettings().s3))

    class EchoEngine:  # a third engine mode is a class registered by name, nothing else
        name = "echo"

        def __init__(self, settings, storage):
            self.settings = settings

    register_engine("echo", EchoEngine)
    try:
        made = create_engine("echo", EnvironmentSettings(), Storage(EnvironmentSettings().s3))
        assert isinstance(made, EchoEngine) and not isinstance(made, Engine)  # it lacks the methods
    finally:
        from lakeio import engines

        engines._REGISTRY.pop("echo")


def test_a_read_resolves_its_dataset_once(tmp_path, monkeypatch):
    from lakeio import catalog

    conf = Path(__file__).resolve().parents[2] / "conf"
    lake = lakeio.Catalog.load(conf, env="sample", base_dir=tmp_path)
    calls = []
    original = catalog.resolve_location
    monkeypatch.setattr(catalog, "resolve_location", lambda *a: calls.append(a) or original(*a))
    frame = lake.read("flights", where="month = 1")
    assert len(calls) == 1 and frame.plan.target.name == "flights" and frame.plan.format == "csv"


def test_docstring_examples_run_and_none_is_skipped():
    # python/conftest.py runs them in a copy of conf/; pytest collects them with --doctest-modules.
    skipped = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if "+SKIP" in path.read_text()]
    assert skipped == []
    assert "--doctest-modules" in (PACKAGE.parents[1] / "pyproject.toml").read_text()
