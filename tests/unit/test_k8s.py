"""``lakeio k8s manifest``: a SparkApplication validated strictly against the operator's own CRD (of
the release the Makefile's ``crds`` target downloads), from the same source as ``lakeio submit``."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from lakeio.cli import cli

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
DRIVER = REPO / "deploy" / "demo_driver.py"
# The operator release lakeio.k8s writes for, named once, in the Makefile that downloads its CRDs.
OPERATOR_VERSION = re.search(r"^OPERATOR_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)[1]
CRD = REPO / "build" / f"spark-operator-{OPERATOR_VERSION}" / "sparkoperator.k8s.io_sparkapplications.yaml"


def crd_schema() -> dict:
    """The openAPIV3Schema of the CRD's ``v1beta2`` version, the API lakeio writes."""
    if not CRD.is_file():
        raise FileNotFoundError(f"{CRD} is missing: `make crds` downloads the operator's CRDs")
    [version] = [v for v in yaml.safe_load(CRD.read_text())["spec"]["versions"] if v["name"] == "v1beta2"]
    return version["schema"]["openAPIV3Schema"]


def strict(schema: dict) -> dict:
    """``schema`` with every object that lists its properties closed to others (unless it keeps
    unknown fields, ``x-kubernetes-preserve-unknown-fields``): an unknown field is an error, as in the
    API server's strict field validation."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                    and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


VALIDATOR = jsonschema.Draft202012Validator(strict(crd_schema()))


def manifest(*args: str, env: str = "prod", conf: Path = CONF):
    result = CliRunner().invoke(cli, ["--conf", str(conf), "--env", env, "k8s", "manifest", *args],
                                catch_exceptions=False)
    return result, (list(yaml.safe_load_all(result.output)) if result.exit_code == 0 else [])


def errors(document: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def test_the_manifest_is_a_valid_spark_application_from_the_submit_source(jars):
    result, documents = manifest(str(DRIVER), "--image", "lakeio:0.1.0", "--namespace", "data",
                                 "--spark-conf", "spark.executor.memoryOverhead=512m", "--service-account", "spark",
                                 "--secret-env", "lakeio-s3", "--", "--engine", "spark")
    assert result.exit_code == 0, result.output
    [app] = documents
    assert errors(app) == []
    spec = app["spec"]
    assert (app["apiVersion"], app["kind"], app["metadata"]["namespace"]) == \
        ("sparkoperator.k8s.io/v1beta2", "SparkApplication", "data")
    assert spec["mainApplicationFile"] == "local:///opt/lakeio/deploy/demo_driver.py"
    assert spec["arguments"] == ["--engine", "spark"]
    assert spec["deps"] == {"jars": ["local:///opt/lakeio/jars/lakeio-helper-0.1.0.jar",
                                     "local:///opt/lakeio/jars/third-party/delta-spark_4.1_2.13-4.4.0.jar"],
                            "pyFiles": ["local:///opt/lakeio/lakeio.zip"]}
    submitted = CliRunner().invoke(cli, ["--conf", str(CONF), "--env", "prod", "submit", str(DRIVER), "--dry-run",
                                         "--spark-conf", "spark.executor.memoryOverhead=512m"]).output.split()
    submit_conf = dict(submitted[i + 1].split("=", 1) for i, word in enumerate(submitted) if word == "--conf")
    assert spec["sparkConf"] == submit_conf  # the same conf as lakeio submit, credentials left out of both
    assert {"name": "LAKEIO_ENV", "value": "prod"} in spec["driver"]["env"]
    assert {"name": "LAKEIO_CONF", "value": "/opt/lakeio/conf"} in spec["driver"]["env"]
    assert spec["driver"]["envFrom"] == spec["executor"]["envFrom"] == [{"secretRef": {"name": "lakeio-s3"}}]
    assert spec["driver"]["serviceAccount"] == "spark"


def test_the_schema_is_strict_and_names_the_bad_field(jars):
    _, [app] = manifest(str(DRIVER), "--image", "lakeio:0.1.0")
    misspelt = copy.deepcopy(app)
    misspelt["spec"]["driver"]["memmory"] = "1g"
    assert any("'memmory' was unexpected" in e for e in errors(misspelt))
    missing = copy.deepcopy(app)
    del missing["spec"]["sparkVersion"]
    assert any("'sparkVersion' is a required property" in e for e in errors(missing))
    wrong = copy.deepcopy(app)
    wrong["spec"]["executor"]["instances"] = 0
    assert any(e.startswith("spec/executor/instances") for e in errors(wrong))


def test_the_conf_folder_as_config_maps_mounted_on_the_driver(jars):
    result, documents = manifest(str(DRIVER), "--image", "lakeio:0.1.0", "--conf-source", "configmap",
                                 "--app-root", "/srv/lakeio")
    assert result.exit_code == 0, result.output
    *maps, app = documents
    assert errors(app) == []
    mounts = {m["name"]: m["path"] for m in app["spec"]["driver"]["configMaps"]}
    assert mounts == {"lakeio-conf": "/srv/lakeio/conf", "lakeio-conf-samples": "/srv/lakeio/conf/samples",
                      "lakeio-conf-schemas": "/srv/lakeio/conf/schemas"}
    for config_map in maps:
        assert config_map["apiVersion"] == "v1" and config_map["kind"] == "ConfigMap"
        folder = CONF / Path(mounts[config_map["metadata"]["name"]]).relative_to("/srv/lakeio/conf")
        assert config_map["data"] == {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


def test_credentials_never_reach_the_manifest(jars, conf_with_credentials):
    result, _ = manifest(str(DRIVER), "--image", "i", conf=conf_with_credentials)
    assert result.exit_code == 0, result.output
    assert "very-secret-value" not in result.output and "AKIAEXAMPLE" not in result.output
    # A ConfigMap of that folder would publish the key written in it: refused, naming the key.
    result, _ = manifest(str(DRIVER), "--image", "i", "--conf-source", "configmap", conf=conf_with_credentials)
    assert result.exit_code == 2
    assert "environments.prod.s3.access_key_id is written in the file" in result.output


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--image", "i", "--name", "Bad_Name"], 2, "is not a valid Kubernetes name"),
    ([], 2, "Missing option '--image'"),
])
def test_bad_arguments_exit_2(jars, args, code, message):
    result, _ = manifest(str(DRIVER), *args)
    assert result.exit_code == code
    assert message in result.output


def test_without_the_jars_it_exits_3(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEIO_JARS_DIR", str(tmp_path / "nothing"))
    result, _ = manifest(str(DRIVER), "--image", "i")
    assert result.exit_code == 3
    assert "JVM helper" in result.output

