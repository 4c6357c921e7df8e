"""Fixtures both test suites share."""

from __future__ import annotations

import pyarrow.dataset as pads
import pytest


@pytest.fixture
def write_dataset_fails(monkeypatch):
    """``write_dataset_fails(after, message)`` makes pyarrow's ``write_dataset`` raise
    ``OSError(message)`` once it has written ``after`` files; returns the list of the files it wrote."""

    def install(after: int, message: str) -> list[str]:
        real, seen = pads.write_dataset, []

        def failing(*args, file_visitor=None, **kwargs):
            def visit(file):
                if file_visitor is not None:
                    file_visitor(file)
                seen.append(file.path)
                if len(seen) == after:
                    raise OSError(message)
            return real(*args, file_visitor=visit, **kwargs)

        monkeypatch.setattr(pads, "write_dataset", failing)
        return seen

    return install
