"""Shared fixtures: the project root, a throwaway copy of the project, and the real CLI."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# One pytest process per core already keeps the machine busy: a BLAS pool of one thread per process
# (and in the notebooks, servers and commands the tests start, which inherit this) does not fight the
# other process for the cores. About 12% less CPU for a golden test; the engine's own threading is
# unchanged (its E-step pool is sized from the cores, and it limits BLAS itself).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(
    sys.executable
).parent  # the project's virtualenv scripts (irt-nb, nbdev-export, papermill)


LSAT7_ITEMS = ["Q1", "Q2", "Q3", "Q4", "Q5"]


def lsat7_wide(path: Path, blank: dict | None = None):
    "LSAT7 (shared/data) as a wide CSV at `path`, one row per examinee (ids s0000...); `blank`: {item: rows} left unanswered. The pattern frequencies."
    import numpy as np
    import pandas as pd

    patterns = pd.read_csv(ROOT / "data/lsat7/lsat7_freq.csv")
    answers = np.repeat(patterns[LSAT7_ITEMS].to_numpy(), patterns.freq, axis=0).astype(float)
    wide = pd.DataFrame(answers, columns=LSAT7_ITEMS)
    for item, rows in (blank or {}).items():
        wide.loc[rows, item] = np.nan
    wide.insert(0, "student_id", [f"s{i:04d}" for i in range(len(wide))])
    wide.to_csv(path, index=False)
    return patterns


def run(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    "Run a command of the project's virtualenv and capture its output."
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, input=stdin, capture_output=True, text=True
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    "A copy of the project (pyproject, notebooks, package) that a test may edit."
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for folder in ("nbs", "irt_nb"):
        shutil.copytree(
            ROOT / folder,
            tmp_path / folder,
            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"),
        )
    return tmp_path


def edit_cell(notebook: Path, startswith: str, new_source: str) -> None:
    "Replace the source of the first cell whose source starts with `startswith`."
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "".join(c["source"]).startswith(startswith))
    cell["source"] = new_source
    _write_clean(notebook, nb)


def add_code_cell(notebook: Path, source: str, cell_id: str = "added01") -> None:
    "Append a code cell to `notebook`."
    nb = json.loads(notebook.read_text())
    nb["cells"].append(
        {
            "cell_type": "code",
            "id": cell_id,
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }
    )
    _write_clean(notebook, nb)


def _write_clean(notebook: Path, nb: dict) -> None:
    "Write `nb` the way the project's notebooks are committed (clean), as an editor plus the filter would."
    from irt_nb.workbench.checks import clean_notebook, notebook_text

    notebook.write_text(notebook_text(clean_notebook(nb)), encoding="utf-8")


SPREAD = {
    "test_refactoring.py"
}  # tests that share nothing costly: spread over the pytest processes


def pytest_collection_modifyitems(items):
    "One pytest process per test file (its module fixtures are built once), but the files in SPREAD test by test."
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
