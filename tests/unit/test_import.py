"""``import lakeio`` is light and leaves logging alone: checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pyspark", "pandas", "pyarrow", "deltalake", "py4j", "numpy")

PROBE = """
import json, logging, sys
root = logging.getLogger()
before = (list(root.handlers), root.level)
import {modules}
import lakeio
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({heavy!r}))
io_logger = logging.getLogger("lakeio.io")
print(json.dumps({{
    "loaded": loaded,
    "root_handlers_same": list(root.handlers) == before[0],
    "root_level_same": root.level == before[1],
    "root_handlers": len(root.handlers),
    "lakeio_handlers": [type(h).__name__ for name in ("lakeio", "lakeio.io")
                        for h in logging.getLogger(name).handlers],
    "io_level": io_logger.level,
    "io_propagates": io_logger.propagate,
    "all": lakeio.__all__,
    "missing": [name for name in lakeio.__all__ if not hasattr(lakeio, name)],
    "version": lakeio.__version__,
}}))
"""


def probe(tmp_path, *modules: str) -> dict:
    code = PROBE.format(modules=", ".join(("lakeio",) + modules), heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_lakeio_is_light_and_leaves_logging_alone(tmp_path):
    found = probe(tmp_path)
    assert found["loaded"] == []
    assert found["root_handlers_same"] is True
    assert found["root_handlers"] == 0
    assert found["root_level_same"] is True
    assert found["lakeio_handlers"] in ([], ["NullHandler"])
    assert found["io_level"] == 0  # NOTSET: the application decides
    assert found["io_propagates"] is True


@pytest.mark.parametrize("module", ["lakeio.catalog", "lakeio.predicate", "lakeio.frame", "lakeio.config",
                                    "lakeio.validation", "lakeio.storage", "lakeio.engines", "lakeio.engines.arrow",
                                    "lakeio.demo", "lakeio.spark.pruning", "lakeio.spark.engine"])
def test_submodules_are_light_too(tmp_path, module):
    assert probe(tmp_path, module)["loaded"] == []


def test_all_names_exist_and_are_unique(tmp_path):
    found = probe(tmp_path)
    assert found["missing"] == []
    assert len(found["all"]) == len(set(found["all"]))
    assert {"Catalog", "LakeFrame", "IORecord", "LakeioError", "ConfigError", "InvalidArgumentError",
            "ResourceNotFoundError", "SchemaMismatchError", "StorageError", "EngineUnavailableError",
            "__version__"} <= set(found["all"])


def test_public_errors_share_one_root():
    import lakeio

    for name in lakeio.__all__:
        value = getattr(lakeio, name)
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, lakeio.LakeioError), name
    assert issubclass(lakeio.ConfigError, ValueError)
    assert issubclass(lakeio.InvalidArgumentError, ValueError)
    assert issubclass(lakeio.SchemaMismatchError, ValueError)
    assert issubclass(lakeio.ResourceNotFoundError, KeyError)
    assert issubclass(lakeio.EngineUnavailableError, RuntimeError)
