"""Which Spark lines lakeio supports, decided without a JVM."""

from __future__ import annotations

import pytest

from lakeio.errors import EngineUnavailableError
from lakeio.spark import jvm


@pytest.mark.parametrize(("version", "line"), [("4.1.4", "4.1"), ("3.5.7", "3.5"), ("3.5.0", "3.5")])
def test_supported_versions_map_to_their_line(version, line):
    assert jvm.spark_line(version) == line


@pytest.mark.parametrize("version", ["4.0.1", "3.4.3", "4.2.0"])
def test_unsupported_spark_fails_fast_naming_the_lines(version):
    with pytest.raises(EngineUnavailableError, match=rf"Spark {version} is not a line.*4\.1\.x, 3\.5\.x"):
        jvm.spark_line(version)
