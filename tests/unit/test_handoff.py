"""Where Spark stages what it hands to Arrow (no JVM: only the session's ``spark.master`` conf is
consulted, given here by a stand-in for a session on a cluster)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lakeio.config import EnvironmentSettings, SparkSettings
from lakeio.errors import InvalidArgumentError
from lakeio.spark.handoff import default_scratch, scratch_location
from lakeio.storage import Location


def session_on(master: str):
    return SimpleNamespace(conf=SimpleNamespace(get=lambda key, default=None: master if key == "spark.master" else default))


def test_a_cluster_without_a_scratch_uri_is_refused_with_what_to_set():
    with pytest.raises(InvalidArgumentError, match=r"Spark runs on spark://10\.0\.0\.1:7077: set spark\.scratch_uri"):
        scratch_location(EnvironmentSettings(), session_on("spark://10.0.0.1:7077"))


def test_the_scratch_uri_wins_and_a_local_master_stages_in_the_temporary_folder():
    on_s3 = EnvironmentSettings(spark=SparkSettings(scratch_uri="s3://bucket/tmp/lakeio"))
    assert scratch_location(on_s3, session_on("k8s://https://api:6443")) == Location("s3", "bucket/tmp/lakeio")
    assert scratch_location(EnvironmentSettings(), session_on("local[2]")) == Location("file", default_scratch())
