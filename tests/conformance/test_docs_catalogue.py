"""docs/checks.md's catalogue table says what the code's catalogue does."""

from __future__ import annotations

from pathlib import Path

from harness.conformance import CATALOGUE

DOC = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def rows() -> dict[str, tuple[str, str, str]]:
    found = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            found[cells[0].strip("`")] = (cells[1], cells[2], cells[3])
    return found


def test_every_check_has_its_row_with_its_severity_title_and_rationale() -> None:
    table = rows()
    assert list(table) == [check.id for check in CATALOGUE]  # every one, in report order
    for check in CATALOGUE:
        assert table[check.id] == (check.severity.value, check.title, check.rationale), check.id


def test_the_readme_counts_the_checks_there_are() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"the catalogue of all {len(CATALOGUE)} checks" in " ".join(readme.split())
