# The two commands of the README, and the set-up they share. Each step reruns only when its inputs change.
#   make demo   the demo pipeline on the embedded default (local files, no cluster)
#   make test   the whole test suite: the Scala helper's tests, Python unit tests, then integration tests
#               (real Spark, Delta, S3 server)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JARS   := build/jars
SCALA  := $(shell find jvm/src/main -name '*.scala' 2>/dev/null)
GRADLE  = gradle --no-daemon --console=plain -q \
	  -PsparkJars="$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
	  -PdeltaVersion="$$($(PY) -c 'import importlib.metadata as m; print(m.version("delta-spark"))')"

.PHONY: demo test unit integration jvm-test setup clean

demo: setup
	$(PY) -m lakeio.demo

test: setup jvm-test
	$(PY) -m pytest tests/unit tests/integration

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

# The Scala helper's unit tests (ScalaTest, run by Gradle against pyspark's own jars).
jvm-test: setup
	$(GRADLE) testHelper

setup: $(VENV)/.installed $(JARS)/.built

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
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
