"""The docs a reader browses: every link of the README and docs/*.md leads somewhere, the commands
the README shows are ones `irt-nb` accepts, and `make docs` renders every notebook into the site."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from irt_nb.workbench.cli import build_parser

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_of_the_readme_and_the_docs_resolves(page):
    local = [link for link in _links(page) if not re.match(r"^[a-z]+:", link)]
    missing = [link for link in local if not (page.parent / link.partition("#")[0]).exists()]
    assert not missing, f"{page.name}: links to nothing: {missing}"


def test_the_front_page_is_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150
    linked = {Path(link).name for link in _links(ROOT / "README.md")}
    assert {p.name for p in PAGES[1:]} <= linked


def test_the_commands_the_front_page_shows_are_ones_irt_nb_accepts():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(irt-nb [^#\n]*?)\s*(?:#.*)?$", readme, re.M)
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])  # SystemExit (a failure) if it would be refused


def test_make_docs_renders_every_notebook_and_links_only_to_its_own_pages(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs/build.py"), "--out", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    site = tmp_path / "site"
    notebooks = sorted((ROOT / "nbs").glob("*.ipynb")) + sorted(
        (ROOT / "nbs/reports").glob("*.ipynb")
    )
    for notebook in notebooks:
        page = site / notebook.relative_to(ROOT).with_suffix(".html")
        assert page.is_file(), f"{notebook.name} was not rendered"
        assert "<main>" in page.read_text(encoding="utf-8")
    diagnostics = (site / "nbs/science/10_diagnostics.html").read_text(encoding="utf-8")
    assert "model_fit" in diagnostics and "Maydeu-Olivares" in diagnostics  # code and prose
    for page in site.rglob("*.html"):
        for target in re.findall(r'href="([^"#]+)', page.read_text(encoding="utf-8")):
            if not re.match(r"^[a-z]+:", target):
                assert (page.parent / target).exists(), (
                    f"{page.relative_to(site)} links to {target}"
                )
