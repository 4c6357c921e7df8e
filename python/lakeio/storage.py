"""URI schemes -> what each engine needs to reach the data.

One :class:`Location` per resolved dataset URI, and one :class:`Storage` per environment that turns
the environment's S3 settings into a pyarrow filesystem, delta-rs storage options and s3a Hadoop
configuration, so the three clients always agree on endpoint, region and credentials.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lakeio.config import S3Settings
from lakeio.errors import ConfigError, EngineUnavailableError

# delta-rs commits to S3 with a conditional put unless one of these (storage option or environment
# variable, any case) makes it take another arbitration, which Spark's writers do not take part in.
_DELTA_RS_OTHER_ARBITRATION = ("AWS_S3_LOCKING_PROVIDER", "AWS_COPY_IF_NOT_EXISTS", "COPY_IF_NOT_EXISTS")
_DELTA_RS_CONDITIONAL_PUT = ("AWS_CONDITIONAL_PUT", "CONDITIONAL_PUT")


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


def resolve_location(uri: str, base_dir: Path) -> Location:
    """Parses a dataset URI; a relative local path is taken from ``base_dir``.

    Example:
        >>> resolve_location("s3://bucket/flights/", Path("/"))
        Location(scheme='s3', path='bucket/flights')
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise ConfigError(f"{uri!r}: an S3 URI needs a bucket (s3://bucket/path)")
        return Location("s3", f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/"))
    if parsed.scheme in ("", "file"):
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"{uri!r}: a file URI takes an absolute path (file:///dir or file:/dir), "
                              f"not a host {parsed.netloc!r}")
        raw = parsed.path if parsed.scheme == "file" else uri
        return Location("file", os.path.normpath(base_dir / Path(raw).expanduser()))
    raise ConfigError(f"{uri!r}: unsupported URI scheme {parsed.scheme!r}; use a local path, file:// or s3://")


@dataclass(frozen=True)
class S3Endpoint:
    """S3 settings with the standard AWS variables filled in where the YAML is silent."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3Endpoint:
        env = os.environ.get
        return cls(
            endpoint_url=settings.endpoint_url or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"),
            region=settings.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=settings.access_key_id or env("AWS_ACCESS_KEY_ID"),
            secret_access_key=settings.secret_access_key or env("AWS_SECRET_ACCESS_KEY"),
            session_token=settings.session_token or env("AWS_SESSION_TOKEN"),
        )

    @property
    def uses_http(self) -> bool:
        return bool(self.endpoint_url) and urlparse(self.endpoint_url).scheme == "http"


class Storage:
    """The clients of one environment's storage."""

    def __init__(self, s3: S3Settings):
        self.s3 = S3Endpoint.from_settings(s3)
        self.delta_commits = s3.delta_commits

    @functools.cached_property
    def _s3_filesystem(self):
        from pyarrow import fs

        options: dict = {"region": self.s3.region}
        if self.s3.endpoint_url:
            parsed = urlparse(self.s3.endpoint_url)
            options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
        if self.s3.access_key_id:
            options.update(access_key=self.s3.access_key_id, secret_key=self.s3.secret_access_key,
                           session_token=self.s3.session_token)
        return fs.S3FileSystem(**options)

    def filesystem(self, location: Location):
        """The pyarrow filesystem for ``location`` (``location.path`` is its path there)."""
        from pyarrow import fs

        return fs.LocalFileSystem() if location.scheme == "file" else self._s3_filesystem

    def delta_options(self, location: Location) -> dict[str, str]:
        """delta-rs ``storage_options`` for ``location``."""
        if location.scheme == "file":
            return {}
        options = {"AWS_REGION": self.s3.region}
        if self.s3.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.s3.endpoint_url
            if self.s3.uses_http:
                options["AWS_ALLOW_HTTP"] = "true"
        if self.s3.access_key_id:
            options.update(AWS_ACCESS_KEY_ID=self.s3.access_key_id,
                           AWS_SECRET_ACCESS_KEY=self.s3.secret_access_key or "")
            if self.s3.session_token:
                options["AWS_SESSION_TOKEN"] = self.s3.session_token
        return options

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
        """s3a settings, as ``spark.hadoop.*`` keys, for the same endpoint and credentials."""
        conf = {"fs.s3a.endpoint.region": self.s3.region}
        if self.s3.endpoint_url:
            conf.update({
                "fs.s3a.endpoint": self.s3.endpoint_url,
                "fs.s3a.path.style.access": "true",
                "fs.s3a.connection.ssl.enabled": str(not self.s3.uses_http).lower(),
            })
        if self.s3.access_key_id:
            provider = "TemporaryAWSCredentialsProvider" if self.s3.session_token else "SimpleAWSCredentialsProvider"
            conf.update({
                "fs.s3a.aws.credentials.provider": f"org.apache.hadoop.fs.s3a.{provider}",
                "fs.s3a.access.key": self.s3.access_key_id,
                "fs.s3a.secret.key": self.s3.secret_access_key or "",
            })
            if self.s3.session_token:
                conf["fs.s3a.session.token"] = self.s3.session_token
        return {f"spark.hadoop.{key}": value for key, value in conf.items()}
