"""What the installed Spark line can do, for the tests that adapt to it."""

from __future__ import annotations

from lakeio.spark import jvm

LINE = jvm.installed_line()
# The 3.5 line's s3a cannot create a file only if absent, so its Spark commits Delta to S3 as the one
# writer (lakeio refuses conditional_put there: tests/integration/test_spark_stack.py).
S3_COMMITS = "conditional_put" if LINE in jvm.CONDITIONAL_CREATE_LINES else "single_writer"
