"""URI schemes -> what each engine needs to reach the data.

One :class:`Location` per resolved dataset URI, and one :class:`Storage` per environment that turns
the environment's S3 settings into a pyarrow filesystem, delta-rs storage options and s3a Hadoop
configuration, so the three clients always agree on endpoint, region and credentials.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from pydantic import SecretStr

from lakeio.config import S3Settings
from lakeio.errors import ConfigError, EngineUnavailableError

# delta-rs commits to S3 with a conditional put unless one of these (storage option or environment
# variable, any case) makes it take another arbitration, which Spark's writers do not take part in.
_DELTA_RS_OTHER_ARBITRATION = ("AWS_S3_LOCKING_PROVIDER", "AWS_COPY_IF_NOT_EXISTS", "COPY_IF_NOT_EXISTS")
_DELTA_RS_CONDITIONAL_PUT = ("AWS_CONDITIONAL_PUT", "CONDITIONAL_PUT")

# Tries of one S3 request (the first and its retries) by every client lakeio configures.
S3_ATTEMPTS = 10


def transient(error: BaseException) -> bool:
    """True when ``error`` (or what it wraps, as lakeio's errors say) is an S3 fault worth a
    new try: throttling, a server error, a dropped or failed transfer."""
    said = str(error)
    return any(mark in said for mark in ("SlowDown", "SLOW_DOWN", "503", "INTERNAL_FAILURE", "NETWORK_CONNECTION",
                                         "Failed to flush response stream", "ServiceUnavailable"))


T = TypeVar("T")

#: How many times a call S3 answered with a transient fault is made (after the client's own retries).
TRANSIENT_ATTEMPTS = 3


def again_if_transient(location: Location, call: Callable[[], T]) -> T:
    """``call()``, made again (after a pause) when S3 answered it with a transient fault the
    client's retries gave up on, or could not retry (a GetObject into a stream already written)."""
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            return call()
        except Exception as error:
            if location.scheme != "s3" or attempt == TRANSIENT_ATTEMPTS or not transient(error):
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Location:
    """A dataset's root. ``path`` is what pyarrow filesystems take: ``/abs/dir`` or ``bucket/key``."""

    scheme: str  # "file" or "s3"
    path: str

    @property
    def uri(self) -> str:
        """The URI delta-rs and users know: ``/abs/dir`` or ``s3://bucket/key``."""
        return self.path if self.scheme == "file" else f"s3://{self.path}"

    @property
    def spark_path(self) -> str:
        """The path Hadoop's filesystems take: ``file:/abs/dir`` or ``s3a://bucket/key``."""
        return f"file:{self.path}" if self.scheme == "file" else f"s3a://{self.path}"

    @property
    def spark_literal(self) -> str:
        r""":attr:`spark_path` with the characters Spark's ``load`` would expand as a glob escaped,
        to name exactly one folder or file.

        Example:
            >>> Location("s3", "bucket/t/name=a}b*").spark_literal
            's3a://bucket/t/name=a\\}b\\*'
        """
        return re.sub(r"([\\\[\]{}*?])", r"\\\1", self.spark_path)


def resolve_location(uri: str, base_dir: Path) -> Location:
    """Parses a dataset URI; a relative local path is taken from ``base_dir``.

    Example:
        >>> resolve_location("s3://bucket/flights/", Path("/"))
        Location(scheme='s3', path='bucket/flights')
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        key = parsed.path.strip("/")
        if not parsed.netloc or not key:
            raise ConfigError(f"{uri!r}: an S3 URI names a bucket and a folder in it (s3://bucket/path), "
                              "not a whole bucket")
        if any(part in (".", "..") for part in key.split("/")):
            raise ConfigError(f"{uri!r}: an S3 key has no '.' or '..' folders")
        return Location("s3", f"{parsed.netloc}/{key}")
    if parsed.scheme in ("", "file"):
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"{uri!r}: a file URI takes an absolute path (file:///dir or file:/dir), "
                              f"not a host {parsed.netloc!r}")
        raw = parsed.path if parsed.scheme == "file" else uri
        path = os.path.normpath(base_dir / Path(raw).expanduser())
        if Path(path).parent == Path(path):
            raise ConfigError(f"{uri!r}: a dataset is a folder of its own, not the file system's root")
        return Location("file", path)
    raise ConfigError(f"{uri!r}: unsupported URI scheme {parsed.scheme!r}; use a local path, file:// or s3://")


@dataclass(frozen=True)
class S3Endpoint:
    """S3 settings with the standard AWS variables filled in where the YAML is silent."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: SecretStr | None
    session_token: SecretStr | None

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3Endpoint:
        env = os.environ.get

        def secret(value: SecretStr | None, variable: str) -> SecretStr | None:
            return value or (SecretStr(env(variable) or "") if env(variable) else None)

        return cls(
            endpoint_url=settings.endpoint_url or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"),
            region=settings.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=settings.access_key_id or env("AWS_ACCESS_KEY_ID"),
            secret_access_key=secret(settings.secret_access_key, "AWS_SECRET_ACCESS_KEY"),
            session_token=secret(settings.session_token, "AWS_SESSION_TOKEN"),
        )

    def credentials(self) -> dict[str, str]:
        """The credentials as the standard AWS variables (plain text: for clients only, never logged)."""
        if not self.access_key_id:
            return {}
        found = {"AWS_ACCESS_KEY_ID": self.access_key_id,
                 "AWS_SECRET_ACCESS_KEY": _reveal(self.secret_access_key) or "",
                 "AWS_SESSION_TOKEN": _reveal(self.session_token)}
        return {name: value for name, value in found.items() if value is not None}

    @property
    def uses_http(self) -> bool:
        return bool(self.endpoint_url) and urlparse(self.endpoint_url).scheme == "http"


class Storage:
    """The clients of one environment's storage."""

    def __init__(self, s3: S3Settings):
        self.s3 = S3Endpoint.from_settings(s3)
        self.delta_commits = s3.delta_commits

    def __repr__(self) -> str:
        return f"Storage(endpoint_url={self.s3.endpoint_url!r}, region={self.s3.region!r})"

    @functools.cached_property
    def _s3_filesystem(self):
        from pyarrow import fs

        options: dict = {"region": self.s3.region}
        if self.s3.endpoint_url:
            parsed = urlparse(self.s3.endpoint_url)
            options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
        if self.s3.access_key_id:
            options.update(access_key=self.s3.access_key_id, secret_key=_reveal(self.s3.secret_access_key),
                           session_token=_reveal(self.s3.session_token))
        # Transient faults (503 SlowDown, 500, dropped connections) are retried with the SDK's
        # standard backoff, S3_ATTEMPTS tries in all (docs/guide/reliability.md states the bound).
        return fs.S3FileSystem(retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS), **options)

    @functools.cached_property
    def s3_client(self):
        """A boto3 S3 client for the same endpoint and credentials, with the same retries: the
        plain-file commit's conditional puts (pyarrow's filesystem has none) go through it."""
        try:
            import boto3
            from botocore.config import Config
        except ImportError as error:
            raise ConfigError("writing plain files on S3 needs boto3: pip install 'lakeio[s3]'") from error
        _BOTOCORE_REDACTION.hide(_reveal(self.s3.secret_access_key), _reveal(self.s3.session_token))
        return boto3.client("s3", endpoint_url=self.s3.endpoint_url, region_name=self.s3.region,
                            aws_access_key_id=self.s3.access_key_id, aws_secret_access_key=_reveal(self.s3.secret_access_key),
                            aws_session_token=_reveal(self.s3.session_token),
                            config=Config(retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"}))

    def filesystem(self, location: Location):
        """The pyarrow filesystem for ``location`` (``location.path`` is its path there)."""
        from pyarrow import fs

        return fs.LocalFileSystem() if location.scheme == "file" else self._s3_filesystem

    def delta_version(self, location: Location) -> int | None:
        """The latest version of the Delta table at ``location``; None when there is no table there."""
        from deltalake import DeltaTable

        options = self.delta_options(location)
        if not DeltaTable.is_deltatable(location.uri, storage_options=options):
            return None
        return DeltaTable(location.uri, storage_options=options).version()

    def delta_transaction(self, location: Location, app_id: str) -> int | None:
        """The last ``txn`` version the Delta table at ``location`` records for ``app_id``; None
        when it records none (or there is no table there)."""
        from deltalake import DeltaTable

        options = self.delta_options(location)
        if not DeltaTable.is_deltatable(location.uri, storage_options=options):
            return None
        return DeltaTable(location.uri, storage_options=options).transaction_version(app_id)

    def delta_options(self, location: Location) -> dict[str, str]:
        """delta-rs ``storage_options`` for ``location``."""
        if location.scheme == "file":
            return {}
        options = {"AWS_REGION": self.s3.region}
        if self.s3.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.s3.endpoint_url
            if self.s3.uses_http:
                options["AWS_ALLOW_HTTP"] = "true"
        return {**options, **self.s3.credentials()}

    def delta_write_options(self, location: Location) -> dict[str, str]:
        """delta-rs ``storage_options`` for a write (a commit) to ``location``.

        Raises:
            EngineUnavailableError: with ``delta_commits: conditional_put``, the environment sets
                delta-rs to another arbitration (a DynamoDB locking provider, copy-if-not-exists, or
                conditional puts disabled), under which it would race Spark's writers unseen.
        """
        options = self.delta_options(location)
        if location.scheme == "file" or self.delta_commits != "conditional_put":
            return options
        given = {key.upper(): value for key, value in {**os.environ, **options}.items()}
        other = [f"{key}={given[key]}" for key in _DELTA_RS_OTHER_ARBITRATION if given.get(key)]
        other += [f"{key}={given[key]}" for key in _DELTA_RS_CONDITIONAL_PUT if given.get(key, "etag").lower() != "etag"]
        if other:
            raise EngineUnavailableError(
                f"{location.uri}: {', '.join(other)} makes delta-rs commit by another arbitration than the "
                f"conditional put every writer of this environment uses (s3.delta_commits: conditional_put); "
                f"unset it, or set s3.delta_commits: single_writer if only one writer at a time writes here")
        return options

    def hadoop_conf(self) -> dict[str, str]:
        """s3a settings, as ``spark.hadoop.*`` keys, for the same endpoint; no credentials (those
        travel apart: :meth:`hadoop_credentials`, :meth:`credentials_in_environment`)."""
        # s3a's own retries of throttling (503 SlowDown) and other transient faults, to the same bound.
        conf = {"fs.s3a.endpoint.region": self.s3.region, "fs.s3a.attempts.maximum": str(S3_ATTEMPTS),
                "fs.s3a.retry.limit": str(S3_ATTEMPTS), "fs.s3a.retry.interval": "100ms",
                "fs.s3a.retry.throttle.limit": str(S3_ATTEMPTS), "fs.s3a.retry.throttle.interval": "100ms"}
        if self.s3.endpoint_url:
            conf.update({
                "fs.s3a.endpoint": self.s3.endpoint_url,
                "fs.s3a.path.style.access": "true",
                "fs.s3a.connection.ssl.enabled": str(not self.s3.uses_http).lower(),
            })
        if self.s3.access_key_id:
            provider = "TemporaryAWSCredentialsProvider" if self.s3.session_token else "SimpleAWSCredentialsProvider"
            conf["fs.s3a.aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
        return {f"spark.hadoop.{key}": value for key, value in conf.items()}

    def hadoop_credentials(self) -> dict[str, str]:
        """The s3a credential keys (``fs.s3a.access.key``, ...) in plain text, for a running JVM."""
        names = {"AWS_ACCESS_KEY_ID": "fs.s3a.access.key", "AWS_SECRET_ACCESS_KEY": "fs.s3a.secret.key",
                 "AWS_SESSION_TOKEN": "fs.s3a.session.token"}
        return {names[variable]: value for variable, value in self.s3.credentials().items()}

    @contextlib.contextmanager
    def credentials_in_environment(self) -> Iterator[None]:
        """The credentials as the AWS variables of this process while the block runs, so a JVM
        started in it inherits them (Spark copies them into s3a's configuration) without any
        command line, Spark conf or py4j call holding them; the variables are restored after."""
        saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                         "AWS_SESSION_TOKEN")}
        credentials = self.s3.credentials()
        try:
            if credentials:
                for name in saved:
                    os.environ.pop(name, None)
                os.environ.update(credentials)
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _Redaction(logging.Filter):
    """Masks credentials in the records of the botocore loggers that show signed requests: at DEBUG
    they print the headers, the session token among them. Levels and handlers stay the user's."""

    LOGGERS = ("botocore.auth", "botocore.endpoint", "botocore.awsrequest", "botocore.httpsession",
               "botocore.hooks", "botocore.retryhandler", "botocore.client")

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def hide(self, *secrets: str | None) -> None:
        if not self.secrets:
            for name in self.LOGGERS:
                logging.getLogger(name).addFilter(self)
        self.secrets.update(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(secret in text for secret in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "**********")
            record.msg, record.args = text, None
        return True


_BOTOCORE_REDACTION = _Redaction()


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
