"""Docstring examples run as tests (``pytest python/lakeio``), each in a fresh folder holding a copy
of the checked-in configuration, so ``Catalog.load("conf", env="sample")`` works as written and
nothing is written into the checkout."""

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_a_copy_of_the_sample(tmp_path, monkeypatch):
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
