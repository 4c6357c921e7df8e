"""A ``SparkApplication`` for the Kubernetes Spark operator (``sparkoperator.k8s.io/v1beta2``,
operator v2.5.x), built from what ``lakeio submit`` passes to spark-submit: the same Spark conf,
the same jars, the same driver and arguments, the environment in ``LAKEIO_ENV``.

The image (docker/Dockerfile, laid out by docker/install.sh) holds everything at fixed paths under
``app_root`` (default ``/opt/lakeio``): ``lakeio.zip`` for ``--py-files``, ``jars/``, ``deploy/``
(the drivers) and ``conf/``. The conf folder comes from the image, or from ConfigMaps that
:func:`conf_config_maps` builds (one per folder, mounted over the image's ``conf/`` on the driver).
Credentials are never written: the pods get them from the secret named by ``secret_env``.

Example:
    >>> from pathlib import Path
    >>> job = SparkJob(name="demo", env="prod", conf={"spark.sql.session.timeZone": "UTC"},
    ...                jars=(Path("/build/jars/lakeio-helper.jar"),), driver=Path("deploy/demo_driver.py"),
    ...                arguments=("--engine", "spark"))
    >>> app = spark_application(job, image="lakeio:0.1.0", spark_version="4.1.4")
    >>> app["spec"]["mainApplicationFile"], app["spec"]["deps"]["jars"]
    ('local:///opt/lakeio/deploy/demo_driver.py', ['local:///opt/lakeio/jars/lakeio-helper.jar'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lakeio.errors import InvalidArgumentError

API_VERSION = "sparkoperator.k8s.io/v1beta2"
APP_ROOT = "/opt/lakeio"
# A ConfigMap holds at most 1 MiB (etcd's object limit).
CONFIG_MAP_LIMIT = 1024 * 1024
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class SparkJob:
    """What one spark-submit of a lakeio driver takes, wherever it runs: a name, the environment,
    the Spark conf (credentials left out), the jars (the helper first, at the root of the jars
    folder, as :func:`lakeio.spark.jvm.jar_paths` lists them), the driver file and its arguments."""

    name: str
    env: str
    conf: dict[str, str]
    jars: tuple[Path, ...]
    driver: Path
    arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    """Pod sizes and counts: ``memory`` strings as Spark takes them (``512m``, ``2g``)."""

    driver_cores: int = 1
    driver_memory: str = "1g"
    executors: int = 2
    executor_cores: int = 1
    executor_memory: str = "1g"


def spark_application(job: SparkJob, *, image: str, spark_version: str, namespace: str | None = None,
                      app_root: str = APP_ROOT, resources: Resources = Resources(),
                      service_account: str | None = None, secret_env: str | None = None,
                      conf_maps: list[dict[str, Any]] | None = None,
                      image_pull_policy: str = "IfNotPresent") -> dict[str, Any]:
    """The ``SparkApplication`` that runs ``job`` from ``image``, whose files are under ``app_root``.

    Args:
        job: the job, as :func:`lakeio.cli.spark_job` builds it for ``lakeio submit`` too.
        image: the container image (built from docker/Dockerfile).
        spark_version: the image's Spark version (the operator requires it).
        namespace: the namespace, if the manifest should name one.
        app_root: where the image holds lakeio's files.
        resources: driver and executor sizes.
        service_account: the driver's service account (it creates the executor pods).
        secret_env: a Secret whose keys become environment variables of the driver and the executors
            (e.g. ``AWS_ACCESS_KEY_ID``); credentials never appear in the manifest.
        conf_maps: ConfigMaps from :func:`conf_config_maps`, mounted on the driver over the image's conf.

    Raises:
        InvalidArgumentError: a name Kubernetes would refuse.
    """
    _check_name(job.name, "the application name")
    root = PurePosixPath(app_root)
    env = {"LAKEIO_ENV": job.env, "LAKEIO_CONF": str(root / "conf")}
    driver: dict[str, Any] = {
        "cores": resources.driver_cores, "memory": resources.driver_memory,
        "env": [{"name": key, "value": value} for key, value in env.items()],
    }
    executor: dict[str, Any] = {"instances": resources.executors, "cores": resources.executor_cores,
                                "memory": resources.executor_memory}
    if service_account:
        driver["serviceAccount"] = service_account
    if secret_env:
        for pod in (driver, executor):
            pod["envFrom"] = [{"secretRef": {"name": secret_env}}]
    if conf_maps:
        driver["configMaps"] = [{"name": m["metadata"]["name"], "path": m["metadata"]["annotations"][_MOUNT]}
                                for m in conf_maps]
    metadata: dict[str, Any] = {"name": job.name, "labels": {"app.kubernetes.io/name": "lakeio",
                                                             "lakeio.io/environment": _label(job.env)}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": metadata,
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": image,
            "imagePullPolicy": image_pull_policy,
            "sparkVersion": spark_version,
            "mainApplicationFile": _local(root / "deploy" / job.driver.name),
            "arguments": list(job.arguments),
            "sparkConf": dict(job.conf),
            "deps": {"jars": [_local(root / "jars" / PurePosixPath(*jar.relative_to(job.jars[0].parent).parts))
                              for jar in job.jars],
                     "pyFiles": [_local(root / "lakeio.zip")]},
            "restartPolicy": {"type": "Never"},
            "driver": driver,
            "executor": executor,
        },
    }


_MOUNT = "lakeio.io/mount-path"


def conf_config_maps(conf: Path, name: str, *, app_root: str = APP_ROOT,
                     namespace: str | None = None) -> list[dict[str, Any]]:
    """The configuration folder ``conf`` as ConfigMaps, one per folder that holds files (a
    ConfigMap's keys cannot hold a ``/``), each to be mounted at its place under ``app_root/conf``.

    Raises:
        InvalidArgumentError: a file that is not UTF-8 text, a folder over a ConfigMap's 1 MiB, or
            credentials written in lakeio.yaml (a ConfigMap is not a secret: use ``secret_env``).
    """
    _refuse_literal_credentials(conf / "lakeio.yaml")
    folders = sorted({path.parent for path in conf.rglob("*") if path.is_file()}, key=lambda p: p.parts)
    maps = []
    for folder in folders:
        relative = folder.relative_to(conf)
        suffix = "-".join(_label(part) for part in relative.parts)
        map_name = f"{name}-conf" + (f"-{suffix}" if suffix else "")
        _check_name(map_name, f"the ConfigMap name for {folder}")
        data = {}
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            try:
                data[path.name] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise InvalidArgumentError(f"{path}: a ConfigMap holds text and this file is not UTF-8; "
                                           "keep the conf in the image (--conf-source image)") from error
        size = sum(len(key) + len(value.encode()) for key, value in data.items())
        if size > CONFIG_MAP_LIMIT:
            raise InvalidArgumentError(f"{folder}: {size} bytes do not fit a ConfigMap (1 MiB); keep the conf "
                                       "in the image (--conf-source image)")
        metadata: dict[str, Any] = {"name": map_name, "annotations": {
            _MOUNT: str(PurePosixPath(app_root) / "conf" / PurePosixPath(*relative.parts))}}
        if namespace:
            metadata["namespace"] = namespace
        maps.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    return maps


def _refuse_literal_credentials(settings_file: Path) -> None:
    import yaml

    if not settings_file.is_file():
        return
    settings = yaml.safe_load(settings_file.read_text(encoding="utf-8")) or {}
    for env, values in (settings.get("environments") or {}).items():
        s3 = (values or {}).get("s3") or {}
        for key in CREDENTIAL_KEYS:
            value = s3.get(key)
            if value and not str(value).startswith("${"):
                raise InvalidArgumentError(
                    f"{settings_file}: environments.{env}.s3.{key} is written in the file, and a ConfigMap is "
                    "not a secret: read it from a variable (${VAR}) and give the pods a Secret (--secret-env)")


def _local(path: PurePosixPath) -> str:
    """A path inside the image as Spark names a file present on every node."""
    return f"local://{path}"


def _label(text: str) -> str:
    """``text`` as a Kubernetes label value / name part: lower case, ``-`` for anything else."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63] or "x"


def _check_name(name: str, what: str) -> None:
    if len(name) > 63 or not _NAME.match(name):
        raise InvalidArgumentError(f"{what} {name!r} is not a valid Kubernetes name: lower-case letters, "
                                   "digits and '-', starting and ending with a letter or digit, at most 63")
