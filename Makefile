# The two commands of the README, and the set-up they share. Each step reruns only when its inputs change.
#   make demo   the demo pipeline on the embedded default (local files, no cluster, no Java: it needs
#               only the virtualenv with the demo extras)
#   make test   the whole test suite: lint and types (ruff, mypy), the Scala helper's tests, Python unit
#               tests (with the docs' and docstrings' examples, and the strict docs build), then
#               integration tests (real Spark, Delta, S3 server)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JARS   := build/jars
SCALA  := $(shell find jvm/src/main jvm/src/connect -name '*.scala' 2>/dev/null)
GRADLE  = gradle --no-daemon --console=plain -q \
	  -PsparkJars="$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
	  -PdeltaVersion="$$($(PY) -c 'import importlib.metadata as m; print(m.version("delta-spark"))')"

.PHONY: demo test lint unit integration jvm-test setup browser clean

demo: $(VENV)/.demo
	$(PY) -m lakeio.demo

test: setup lint jvm-test
	$(PY) -m pytest tests/unit python/lakeio tests/integration

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check python tests
	$(VENV)/bin/mypy

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit python/lakeio

integration: setup
	$(PY) -m pytest tests/integration

# The Scala helper's unit tests (ScalaTest, run by Gradle against pyspark's own jars).
jvm-test: setup
	$(GRADLE) testHelper

setup: $(VENV)/.installed $(JARS)/.built browser

# Debian's Chromium renders the HTML validation report in tests/integration/test_quality.py.
browser:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

# The build's setuptools>=77 comes from pip's isolated build environment, whatever the venv holds.
$(VENV)/.venv:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.venv
	$(PY) -m pip install -q -e '.[demo]'
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.venv
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Java 17 and Gradle come from Debian's packages when the machine lacks them.
$(JARS)/.built: build.gradle python/lakeio/__init__.py $(SCALA) $(VENV)/.installed
	@command -v java >/dev/null || { apt-get update -q && apt-get install -y -q openjdk-17-jdk-headless; }
	@command -v gradle >/dev/null || { apt-get update -q && apt-get install -y -q gradle; }
	$(GRADLE) jvmJars
	touch $@

clean:
	rm -rf build .gradle $(VENV)
