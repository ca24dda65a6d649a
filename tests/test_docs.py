"""The README and docs/: short, every relative link and picture resolves, and the app shows the FAQ."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_stays_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    assert lines[0] == "---" and "app_file: app.py" in lines  # the Space's front matter stays at the top


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    targets = [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]
    assert page.name != "README.md" or len(targets) >= 10  # the README links its pages and pictures
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, missing


def test_the_readme_links_every_page_of_docs():
    readme = (ROOT / "README.md").read_text()
    assert all(f"docs/{p.name}" in readme for p in PAGES[1:])


def test_the_app_shows_the_faq():
    import app

    faq = (ROOT / "docs" / "faq.md").read_text().split("\n", 1)[1].strip()
    shown = [str(b.value).strip() for b in app.demo.blocks.values() if type(b).__name__ == "Markdown"]
    assert faq in shown and any("[FAQ](#faq)" in v for v in shown)
