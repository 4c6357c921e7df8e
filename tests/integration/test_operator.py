"""The image and the operator path without Docker or Kubernetes: docker/install.sh (what the
Dockerfile runs) lays lakeio out in a temporary prefix, ``lakeio k8s manifest`` writes the
SparkApplication for that layout, and the manifest is run as the Spark operator runs one (its
spark-submit translation, internal/controller/sparkapplication/submission.go of
kubeflow/spark-operator) against the standalone cluster, the driver and jars taken from the prefix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest
import yaml
from click.testing import CliRunner

from conftest import CLUSTER_JOB_CONF
from lakeio.cli import cli
from lakeio.spark import jvm

REPO = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"  # $SPARK_HOME/bin/spark-submit in the image


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    """lakeio installed by docker/install.sh, as in the image's /opt/lakeio."""
    target = tmp_path_factory.mktemp("image") / "opt-lakeio"
    run = subprocess.run(["sh", str(REPO / "docker" / "install.sh"), str(target)], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable, "LAKEIO_JARS_DIR": str(jvm.jars_dir())},
                         timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    return target


def operator_submit_args(app: dict, master: str, secrets: dict[str, dict[str, str]]) -> tuple[list[str], dict]:
    """The spark-submit arguments and driver environment the operator derives from ``app``, in the
    order of its buildSparkSubmitArgs; ``master`` stands for its k8s:// master URL. The operator's
    webhook puts ``driver.env`` and ``envFrom`` secrets on the driver pod: here, the driver process.
    Standalone masters run Python drivers in client mode only: the driver runs here, as in its pod."""
    spec, name = app["spec"], app["metadata"]["name"]
    driver, executor, deps = spec["driver"], spec["executor"], spec.get("deps", {})
    args = ["--master", master, "--deploy-mode", "client", "--name", name]
    for key, flag in (("jars", "--jars"), ("packages", "--packages"), ("excludePackages", "--exclude-packages"),
                      ("repositories", "--repositories"), ("pyFiles", "--py-files"), ("files", "--files"),
                      ("archives", "--archives")):
        if deps.get(key):
            args += [flag, ",".join(deps[key])]
    conf = {"spark.kubernetes.namespace": app["metadata"].get("namespace", "default")}
    if spec.get("image"):
        conf["spark.kubernetes.container.image"] = spec["image"]
    if spec.get("imagePullPolicy"):
        conf["spark.kubernetes.container.image.pullPolicy"] = spec["imagePullPolicy"]
    if spec.get("pythonVersion"):
        conf["spark.kubernetes.pyspark.pythonVersion"] = spec["pythonVersion"]
    conf["spark.kubernetes.submission.waitAppCompletion"] = "false"
    conf |= spec.get("sparkConf", {})
    conf |= {f"spark.hadoop.{k}": v for k, v in spec.get("hadoopConf", {}).items()}
    conf |= {f"spark.kubernetes.driver.label.{k}": v for k, v in app["metadata"].get("labels", {}).items()}
    for field, key in (("cores", "spark.driver.cores"), ("coreLimit", "spark.kubernetes.driver.limit.cores"),
                       ("memory", "spark.driver.memory"), ("memoryOverhead", "spark.driver.memoryOverhead"),
                       ("serviceAccount", "spark.kubernetes.authenticate.driver.serviceAccountName"),
                       ("javaOptions", "spark.driver.extraJavaOptions")):
        if field in driver:
            conf[key] = str(driver[field])
    for field, key in (("instances", "spark.executor.instances"), ("cores", "spark.executor.cores"),
                       ("memory", "spark.executor.memory"), ("memoryOverhead", "spark.executor.memoryOverhead"),
                       ("javaOptions", "spark.executor.extraJavaOptions")):
        if field in executor:
            conf[key] = str(executor[field])
    conf |= {f"spark.executorEnv.{k}": v for k, v in executor.get("envVars", {}).items()}
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    args += [spec["mainApplicationFile"], *spec.get("arguments", [])]
    environment = {}
    for source in driver.get("envFrom", []):
        environment |= secrets[source["secretRef"]["name"]]
    environment |= {variable["name"]: variable["value"] for variable in driver.get("env", [])}
    return args, environment


def test_install_lays_out_the_image_with_runtime_dependencies_only(prefix):
    assert (prefix / "lakeio.zip").is_file() and (prefix / "deploy" / "demo_driver.py").is_file()
    assert (prefix / "conf" / "lakeio.yaml").is_file() and (prefix / "conf" / "schemas" / "flights.yaml").is_file()
    assert sorted(p.name for p in (prefix / "jars").glob("lakeio-helper-*.jar")) == [Path(jvm.jar_paths()[0]).name]
    listed = subprocess.run([str(prefix / "venv" / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True).stdout
    installed = {re.sub(r"[-_.]+", "-", package["name"].lower()) for package in json.loads(listed)}  # PEP 503
    assert {"lakeio", "pyarrow", "deltalake", "pandas", "boto3", "delta-spark", "click"} <= installed
    assert not installed & {"pytest", "moto", "hypothesis", "ruff", "mypy", "mkdocs", "jsonschema", "pyspark"}


def test_the_manifest_runs_as_the_operator_runs_it_on_the_cluster(prefix, spark_cluster, s3_endpoint, s3_objects,
                                                                  tmp_path):
    extra = [word for key, value in CLUSTER_JOB_CONF.items() if not key.startswith(("spark.executor.", "spark.driver."))
             for word in ("--spark-conf", f"{key}={value}")]
    result = CliRunner().invoke(cli, [
        "--conf", str(prefix / "conf"), "--env", "test", "k8s", "manifest", str(prefix / "deploy" / "demo_driver.py"),
        "--image", "lakeio:test", "--name", "lakeio-demo", "--app-root", str(prefix), "--secret-env", "lakeio-s3",
        "--executors", "2", "--executor-memory", "512m", "--driver-memory", "1g", *extra,
        "--", "--engine", "spark", "--refresh"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [app] = yaml.safe_load_all(result.output)
    for path in [app["spec"]["mainApplicationFile"], *app["spec"]["deps"]["jars"], *app["spec"]["deps"]["pyFiles"]]:
        assert Path(path.removeprefix("local://")).is_file(), path  # where the image holds it

    aws = {key: os.environ[key] for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_REGION")}
    args, driver_env = operator_submit_args(app, spark_cluster.master, {"lakeio-s3": aws})
    python = str(prefix / "venv" / "bin" / "python")
    environment = {"PATH": os.environ["PATH"], "JAVA_HOME": os.environ.get("JAVA_HOME", ""), "HOME": str(tmp_path),
                   "SPARK_HOME": str(SPARK_SUBMIT.parent.parent), "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python,
                   **driver_env}
    run = subprocess.run([str(SPARK_SUBMIT), *args], env=environment, cwd=tmp_path, capture_output=True, text=True,
                         timeout=900)

    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "lakeio demo: environment 'test'" in run.stdout
    assert "write flights            336776 rows" in run.stdout
    assert "spark (argument: engine=spark)" in run.stdout
    assert any(key.startswith("flights/_delta_log/") for key in s3_objects("flights/"))
    assert any(key.endswith(".parquet") for key in s3_objects("delay_by_carrier/2013-01/"))
