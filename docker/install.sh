#!/bin/sh
# Lays lakeio out under PREFIX as the image holds it, and as `lakeio k8s manifest --app-root PREFIX`
# names it: docker/Dockerfile runs this with PREFIX=/opt/lakeio; tests/integration/test_operator.py
# runs it into a temporary folder and runs a driver from there.
#   PREFIX/venv/        lakeio and its runtime dependencies (no dev extras; pyspark is $SPARK_HOME's)
#   PREFIX/lakeio.zip   lakeio for --py-files
#   PREFIX/jars/        the helper and third-party jars, as LAKEIO_JARS_DIR lays them out (no Maven at run time)
#   PREFIX/deploy/      the drivers and the log4j2 settings
#   PREFIX/conf/        the configuration folder
# Usage: docker/install.sh PREFIX   (PYTHON: the interpreter, default python3; LAKEIO_JARS_DIR: the
# built jars, default build/jars; LAKEIO_EXTRAS: default pandas,s3,demo; SPARK_LINE: the Spark line
# whose pinned set, constraints/spark-<line>.txt, the dependencies come from, default 4.1)
set -eu

PREFIX=${1:?usage: install.sh PREFIX}
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
JARS=${LAKEIO_JARS_DIR:-$SRC/build/jars}
EXTRAS=${LAKEIO_EXTRAS:-pandas,s3,demo}
CONSTRAINTS=$SRC/constraints/spark-${SPARK_LINE:-4.1}.txt

if ! ls "$JARS"/lakeio-helper-*.jar >/dev/null 2>&1 || ! ls "$JARS"/third-party/delta-spark*.jar >/dev/null 2>&1; then
    echo "install.sh: no lakeio helper or Delta jar in $JARS: build them first (make setup)" >&2
    exit 3
fi

mkdir -p "$PREFIX/jars/third-party" "$PREFIX/deploy" "$PREFIX/conf"
"$PYTHON" -m venv "$PREFIX/venv"
# Built from a copy: a build in place would leave its build/ and egg-info in the source tree.
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
cp -R "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/python" "$BUILD/"
"$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" "$BUILD[$EXTRAS]"
# delta-spark's Python API without the pyspark it requires: Spark comes from the image's $SPARK_HOME.
"$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$(grep '^delta-spark==' "$CONSTRAINTS")"

"$PREFIX/venv/bin/python" -c 'import sys; from pathlib import Path; from lakeio.cli import package_zip; package_zip(Path(sys.argv[1]))' "$PREFIX"
cp "$JARS"/lakeio-helper-*.jar "$PREFIX/jars/"
cp "$JARS"/third-party/*.jar "$PREFIX/jars/third-party/"
cp "$SRC"/deploy/*.py "$SRC"/deploy/log4j2.properties "$PREFIX/deploy/"
cp -R "$SRC"/conf/. "$PREFIX/conf/"
echo "lakeio installed under $PREFIX"
