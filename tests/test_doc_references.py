"""References in code and docs resolve inside the repository: every cited page and section exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*ROOT.joinpath("emulator").rglob("*.py"), *ROOT.joinpath("tests").glob("*.py"), *ROOT.joinpath("docs").glob("*.md")]
CITATION = re.compile(r"docs/([\w-]+\.md), ((?:'[^']+'(?:,? and |, )?)+)")


def headings(page: Path) -> set[str]:
    return {line.lstrip("#").strip() for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def test_cited_sections_exist():
    cited = 0
    for source in SOURCES:
        text = source.read_text(encoding="utf-8")
        # A citation may be wrapped over two comment lines.
        text = re.sub(r"\n\s*(#|\*|//)?\s*", " ", text)
        for page, sections in CITATION.findall(text):
            target = ROOT / "docs" / page
            assert target.exists(), f"{source.relative_to(ROOT)} cites missing docs/{page}"
            for section in re.findall(r"'([^']+)'", sections):
                assert section in headings(target), f"{source.relative_to(ROOT)} cites docs/{page}, '{section}': no such section"
                cited += 1
    assert cited > 20  # the code does cite its sources


def test_no_reference_to_files_outside_the_repository():
    outside = re.compile(r"bandwidth-facts|sdk-notes|product\.md")
    offenders = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if p.name != Path(__file__).name and outside.search(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"cite docs/bandwidth-behaviour.md or a public URL instead: {offenders}"
