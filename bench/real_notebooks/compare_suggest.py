"""Suggested stage labels (irt-nb stages --suggest on the untagged copy) against the hand tags, per code cell."""
import sys
from pathlib import Path
from irt_nb.workbench.checks import staged_cells

for name in sys.argv[1:]:
    f = Path("/tmp/realnb/nb") / name
    if not (f / "suggested.ipynb").exists():
        print(name, "no suggested.ipynb"); continue
    mine = {c.number: c.stage for c in staged_cells(f / "tagged.ipynb")}
    sugg = {c.number: c.stage for c in staged_cells(f / "suggested.ipynb")}
    diff = [(n, mine.get(n), sugg.get(n)) for n in sorted(mine) if mine.get(n) != sugg.get(n)]
    print(f"{name}: {len(mine)} code cells, {len(mine) - len(diff)} same, differ (cell, mine, suggested): {diff}")
