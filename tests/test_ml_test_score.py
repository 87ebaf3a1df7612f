"""docs/ml_test_score.md: every piece of evidence it names exists, and its totals add up."""

import ast
import re
from fractions import Fraction

from conftest import ROOT

from irt_nb.workbench.cli import build_parser

DOC = ROOT / "docs" / "ml_test_score.md"
SECTIONS = {"Data": "D", "Model": "M", "Infrastructure": "I", "Monitoring": "N"}


def rows() -> dict[str, list[tuple[str, Fraction, str]]]:
    "Section -> [(id, score, evidence)] from the tables."
    found = {name: [] for name in SECTIONS}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[DMIN]\d", cells[0]):
            section = next(n for n, p in SECTIONS.items() if p == cells[0][0])
            score = Fraction(1, 2) if cells[2] == "½" else Fraction(cells[2])
            found[section].append((cells[0], score, cells[3]))
    return found


def test_every_evidence_exists():
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for section, items in rows().items():
        assert [i for i, _, _ in items] == [f"{SECTIONS[section]}{n}" for n in range(1, 8)], section
        for item, score, evidence in items:
            named = [
                ref
                for ref in re.findall(r"`([^`]+)`", evidence)
                if ref.startswith(("tests/", "nbs/", "bench/", "docs/", "irt-nb "))
            ]
            if score == 0:
                assert evidence, item  # a zero still says why
                continue
            assert named, f"{item} names no evidence"
            for ref in named:
                if ref.startswith("irt-nb "):
                    assert ref.split()[1] in commands, (item, ref)
                    continue
                path, _, test = ref.partition("::")
                assert (ROOT / path).exists(), (item, path)
                if test:
                    tree = ast.parse((ROOT / path).read_text())
                    assert test in {
                        f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                    }, (item, ref)


def test_the_totals_are_summed_right():
    "Only arithmetic: each section's total and automated count, and the final score as the lowest total (no score is asserted)."
    text = DOC.read_text()
    totals = {}
    for section, items in rows().items():
        totals[section] = total = sum(score for _, score, _ in items)
        automated = sum(1 for _, score, _ in items if score == 1)
        shown = f"{float(total):g}"
        assert f"**{section}: {shown} of 7, {automated} automated**" in text, section
    lowest = min(totals.values())
    assert f"**Final score (the lowest section): {float(lowest):g}**" in text
