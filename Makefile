# The two commands of the README, and the set-up they share. Each step reruns only when its inputs change.
#   make demo   the demo pipeline on the embedded default (local files, no cluster, no Java: it needs
#               only the virtualenv with the demo extras)
#   make test   the whole test suite on the 4.1 line: lint and types (ruff, mypy), the Scala helper's
#               tests, Python unit tests (with the docs' and docstrings' examples, and the strict docs
#               build), then integration tests (real Spark, Delta, S3 server); then the Spark
#               integration tests on the 3.5 line (real Deequ), and the unit tests on Python 3.13
#
# Two Spark lines, each pinned in constraints/spark-<line>.txt: 4.1 (the default: .venv, build/jars)
# and 3.5 (`make setup SPARK_LINE=3.5`: .venv-3.5, build/jars-3.5).

PYTHON     ?= python3
PYTHON313  ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell command -v python3.13))
SPARK_LINE ?= 4.1
ifeq ($(SPARK_LINE),4.1)
VENV   := .venv
JARS   := build/jars
EXTRAS := dev
# No Deequ build for Spark 4 is served, so the line's tests leave out those that run Deequ alone.
LINE_MARKS := -m "not deequ"
else
VENV   := .venv-$(SPARK_LINE)
JARS   := build/jars-$(SPARK_LINE)
EXTRAS := dev,deequ
# pyspark 3.5 ships no Spark Connect server, so the line's tests leave out the Connect cases.
LINE_MARKS := -m "not connect"
endif
CONSTRAINTS := constraints/spark-$(SPARK_LINE).txt
PY     := $(VENV)/bin/python
SCALA  := $(shell find jvm/src/main jvm/src/connect -name '*.scala' 2>/dev/null)
GRADLE  = gradle --no-daemon --console=plain -q -PjarsDir="$(abspath $(JARS))" \
	  -PsparkJars="$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
	  -PdeltaVersion="$$($(PY) -c 'import importlib.metadata as m; print(m.version("delta-spark"))')"
# The Spark integration tests every line runs (the 4.1 line runs all of tests/integration).
SPARK_TESTS := tests/integration/test_parity.py tests/integration/test_validation_parity.py \
	       tests/integration/test_validation_spark.py tests/integration/test_pruning.py \
	       tests/integration/test_spark_submit.py tests/integration/test_spark_stack.py

.PHONY: demo test lint unit unit-3.13 integration spark-integration test-spark-3.5 jvm-test setup jars jars-dir browser crds clean

demo: $(VENV)/.demo
	$(PY) -m lakeio.demo

test: setup lint jvm-test
	LAKEIO_JARS_DIR=$(abspath $(JARS)) $(PY) -m pytest tests/unit python/lakeio tests/integration $(LINE_MARKS)
	$(MAKE) test-spark-3.5
	$(MAKE) unit-3.13

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check python tests
	$(VENV)/bin/mypy

unit: $(VENV)/.installed crds
	$(PY) -m pytest tests/unit python/lakeio

integration: setup
	LAKEIO_JARS_DIR=$(abspath $(JARS)) $(PY) -m pytest tests/integration $(LINE_MARKS)

# The Spark integration tests (and the Scala helper's tests) on the line SPARK_LINE names.
spark-integration: setup jvm-test
	LAKEIO_JARS_DIR=$(abspath $(JARS)) $(PY) -m pytest $(SPARK_TESTS) $(LINE_MARKS)

test-spark-3.5:
	$(MAKE) SPARK_LINE=3.5 spark-integration

# The unit tests (and docstring examples) on Python 3.13: the unit tests' dependencies and the 4.1
# line's pyspark (`lakeio submit` finds spark-submit in it), no JVM.
unit-3.13: .venv-3.13/.installed crds
	.venv-3.13/bin/python -m pytest tests/unit python/lakeio

.venv-3.13/.installed: pyproject.toml constraints/spark-4.1.txt
	@test -n "$(PYTHON313)" || { echo "no Python 3.13 found: set PYTHON313=/path/to/python3.13"; exit 1; }
	$(PYTHON313) -m venv .venv-3.13
	.venv-3.13/bin/python -m pip install -q --upgrade pip
	.venv-3.13/bin/python -m pip install -q -c constraints/spark-4.1.txt -e '.[unit,spark]'
	touch $@

# The Scala helper's unit tests (ScalaTest, run by Gradle against pyspark's own jars).
jvm-test: setup
	$(GRADLE) testHelper

setup: $(VENV)/.installed $(JARS)/.built browser crds

# The line's jars alone (docker/Dockerfile builds them so), and the folder they are in.
jars: $(JARS)/.built
jars-dir:
	@echo $(abspath $(JARS))

# The Kubeflow Spark operator's CRDs, of the release `lakeio k8s manifest` writes for, which
# tests/unit/test_k8s.py validates its manifests against: from the operator's Go module on the Go
# module proxy (`go mod download` checks it against Go's checksum database).
OPERATOR_VERSION := v2.5.0
CRDS := build/spark-operator-$(OPERATOR_VERSION)
crds: $(CRDS)/.downloaded
$(CRDS)/.downloaded:
	@command -v go >/dev/null || { apt-get update -q && apt-get install -y -q golang-go; }
	module=$$(GOMODCACHE=$(abspath build/go-mod) GOFLAGS=-modcacherw go mod download -json \
	    github.com/kubeflow/spark-operator/v2@$(OPERATOR_VERSION) | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') && \
	  mkdir -p $(CRDS) && cp "$$module"/charts/spark-operator-chart/crds/*.yaml $(CRDS)/
	touch $@

# Debian's Chromium renders the HTML validation report in tests/integration/test_quality.py.
browser:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

# The build's setuptools>=77 comes from pip's isolated build environment, whatever the venv holds.
$(VENV)/.venv:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.venv
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[demo]'
	touch $@

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(VENV)/.venv
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

# Java 17 and Gradle come from Debian's packages when the machine lacks them.
$(JARS)/.built: build.gradle python/lakeio/__init__.py $(SCALA) $(VENV)/.installed
	@command -v java >/dev/null || { apt-get update -q && apt-get install -y -q openjdk-17-jdk-headless; }
	@command -v gradle >/dev/null || { apt-get update -q && apt-get install -y -q gradle; }
	$(GRADLE) jvmJars
	touch $@

clean:
	rm -rf build .gradle .venv .venv-*
