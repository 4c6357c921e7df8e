"""The documentation: every Python example on every page runs, and the site builds strictly.

Each page's ```pycon blocks run as one doctest, in order, in a temporary folder holding copies of
``conf/`` and ``schemas/`` (so ``lakeio.Catalog.load("conf", env="sample")`` works as it does from the
repository root, and whatever an example writes lands there, never in the repository).
"""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted([*DOCS.rglob("*.md"), REPO / "README.md"])
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def blocks(page: Path) -> list[tuple[str, int, list[str]]]:
    """The fenced code blocks of a page: (language, line number of the first line, lines)."""
    found, current = [], None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if current is None and match:
            current = (match["lang"], number + 1, [], len(match["indent"]))
        elif current is not None and match and not match["lang"]:
            found.append(current[:3])
            current = None
        elif current is not None:
            current[2].append(line[current[3]:])
    assert current is None, f"{page}: a code block is not closed"
    return found


def doctest_text(page: Path) -> str:
    """The page with everything but its pycon blocks blanked, so doctest's line numbers are the page's."""
    lines = [""] * (len(page.read_text(encoding="utf-8").splitlines()) + 1)
    for lang, start, body in blocks(page):
        if lang == "pycon":
            lines[start - 1:start - 1 + len(body)] = body
    return "\n".join(lines)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def page_doctest(page: Path) -> doctest.DocTest:
    return doctest.DocTestParser().get_doctest(doctest_text(page), {"__name__": "__docs__"}, page_id(page), str(page), 0)


# Pages with Python examples; the others show YAML or shell only (test_no_untested_python_blocks checks that).
EXAMPLE_PAGES = [page for page in PAGES if page_doctest(page).examples]


def test_the_guide_has_examples_to_run():
    assert len(EXAMPLE_PAGES) >= 5


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_examples_run(page, workdir):
    test = page_doctest(page)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    output: list[str] = []
    runner.run(test, out=output.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(output)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_python_examples_are_all_executable(page):
    """Python is shown only as pycon (run above); no example opts out of running."""
    for lang, start, body in blocks(page):
        assert lang != "python", f"{page_id(page)}:{start}: write Python examples as ```pycon with >>> prompts"
        if lang == "pycon":
            assert body and body[0].startswith(">>> "), f"{page_id(page)}:{start}: a pycon block starts with >>>"
        text = "\n".join(body)
        assert "+SKIP" not in text, f"{page_id(page)}:{start}: examples are never skipped"
        if lang != "pycon":
            assert ">>>" not in text, f"{page_id(page)}:{start}: a >>> example outside a pycon block would not run"


def test_every_page_is_in_the_nav_and_reachable_from_the_readme():
    import yaml

    def entries(nav):
        for item in nav:
            if isinstance(item, str):
                yield item
            else:
                for value in item.values():
                    yield from ([value] if isinstance(value, str) else entries(value))

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = set(entries(config["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav == pages
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([^)#]+\.md)(?:#[^)]*)?\)", readme))
    assert pages <= linked, f"pages the README does not link: {sorted(pages - linked)}"
    assert all((DOCS / page).is_file() for page in linked)


def test_site_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
