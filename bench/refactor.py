"""The refactoring assistant beside Soorgeon, on the same research notebooks.

    python bench/refactor.py                    # every fixture notebook, both tools
    python bench/refactor.py --only heart irt   # some of them

For each notebook (the nine of tests/test_refactoring.py), in its own copy of its folder:

- irt_nb: `irt-nb refactor`, every draft executed by papermill in a real kernel, then the drafted
  golden test (`pytest test_golden.py`). A passing end: all three succeed.
- Soorgeon 0.0.20 (the closest peer): `soorgeon refactor -z cloudpickle`, then `ploomber build` of the
  pipeline it wrote (ploomber 0.23.3). A passing end: both succeed. Soorgeon has no golden test, so its
  end proves less: the pipeline runs, not that it computes what the notebook did.

Soorgeon splits a notebook at its `## ` headings and refuses one without them. irt_nb splits at the
researcher's `#| stage` labels. So that both get the same split, a notebook without H2 headings is
given one `## <block>` heading where each irt_nb block starts (the copy Soorgeon reads is recorded).
A notebook needing a database gets it in its parameters cell, written as a literal, for both tools.

Soorgeon and ploomber go into their own virtualenv (bench/.peers/soorgeon, pinned below, with the
notebooks' libraries at the project's locked versions), since ploomber's pins do not fit the lock.
Results (each step's exit code and time, the last lines of a failure) go to bench/results/refactor.json.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PEERS = ROOT / "bench/.peers/soorgeon"
PEER_PINS = ["soorgeon==0.0.20", "ploomber==0.23.3"]
NOTEBOOK_LIBRARIES = ["numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "matplotlib"]
sys.path.insert(0, str(ROOT / "tests"))
from test_refactoring import RESEARCH as NOTEBOOKS  # noqa: E402  (the notebooks the tests refactor)
from test_refactoring import meters_database  # noqa: E402

TIMEOUT = 900  # seconds for one step


def peer_environment() -> Path:
    "Soorgeon and ploomber in their own virtualenv (installed once), with the lock's versions of the notebooks' libraries."
    python = PEERS / "bin/python"
    if not (PEERS / "bin/soorgeon").exists():
        uv = BIN / "uv"
        subprocess.run([str(uv), "venv", "-q", "-p", sys.executable, str(PEERS)], check=True)
        locked = [
            line.strip()
            for line in (ROOT / "requirements.lock").read_text().splitlines()
            if line.split("==")[0].lower() in {*NOTEBOOK_LIBRARIES, "ipykernel", "cloudpickle"}
        ]
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python), *PEER_PINS, *locked],
            check=True,
        )
    return PEERS / "bin"


def step(command: list[str], cwd: Path) -> dict:
    "Run one step; its exit code, time and (when it fails) the end of its output."
    start = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        code, output = -1, f"timed out after {TIMEOUT} s"
    result = {
        "command": " ".join(Path(c).name if "/" in c else c for c in command[:3]),
        "exit_code": code,
        "s": round(time.monotonic() - start, 2),
    }
    if code != 0:
        lines = [ln for ln in output.splitlines() if ln.strip() and "WARNING" not in ln]
        result["error"] = lines[-6:]
    return result


def prepared_copy(source: Path, folder: Path, parameters: dict) -> Path:
    "The notebook in a copy of its folder (its data beside it), with `parameters` written into its parameters cell."
    shutil.copytree(
        source.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.html")
    )
    copy = folder / source.name
    nb = json.loads(copy.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            text = "".join(cell["source"])
            for key, value in parameters.items():
                text = re.sub(rf"^{key}\s*=.*$", f"{key} = {value!r}", text, flags=re.M)
            cell["source"] = text
    copy.write_text(json.dumps(nb, indent=1))
    return copy


def with_headings(notebook: Path) -> tuple[Path, bool]:
    "The notebook as Soorgeon reads it: as it is when it has `## ` headings, else with one where each block starts."
    from irt_nb.workbench.refactoring import plan_blocks, read_research

    nb = json.loads(notebook.read_text())
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    if any(re.search(r"^## ", text, re.M) for text in markdown):
        return notebook, False
    starts = {b.cells[0].number - 1: b.name for b in plan_blocks(read_research(notebook))}
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if i in starts:
            heading = {"cell_type": "markdown", "metadata": {}, "source": f"## {starts[i]}"}
            cells.append({**heading, "id": uuid.uuid4().hex[:8]} if "id" in cell else heading)
        cells.append(cell)
    nb["cells"] = cells
    headed = notebook.with_name(f"headed_{notebook.name}")
    headed.write_text(json.dumps(nb, indent=1))
    return headed, True


def run_irt_nb(notebook: Path, folder: Path) -> dict:
    steps = [
        step(
            [str(BIN / "irt-nb"), "refactor", str(notebook), "--out", str(folder / "drafts")],
            folder,
        )
    ]
    drafts = sorted((folder / "drafts").glob("*.ipynb")) if steps[0]["exit_code"] == 0 else []
    for draft in drafts:
        if steps[-1]["exit_code"] != 0:
            break
        out = folder / f"run_{draft.name}"
        steps.append(
            step(
                [
                    str(BIN / "papermill"),
                    "--cwd",
                    str(draft.parent),
                    "-k",
                    "python3",
                    "--log-level",
                    "ERROR",
                    str(draft),
                    str(out),
                ],
                folder,
            )
        )
    if steps[-1]["exit_code"] == 0:
        steps.append(
            step(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    str(folder / "drafts/test_golden.py"),
                ],
                folder / "drafts",
            )
        )
    return summary(steps, drafts=len(drafts))


def run_soorgeon(notebook: Path, peers: Path) -> dict:
    headed, added = with_headings(notebook)
    steps = [
        step(
            [str(peers / "soorgeon"), "refactor", headed.name, "-z", "cloudpickle"], notebook.parent
        )
    ]
    if steps[0]["exit_code"] == 0:
        steps.append(step([str(peers / "ploomber"), "build", "--force"], notebook.parent))
    return {**summary(steps), "headings_added": added}


def summary(steps: list[dict], **extra) -> dict:
    passed = all(s["exit_code"] == 0 for s in steps)
    return {"passed": passed, "s": round(sum(s["s"] for s in steps), 2), **extra, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(NOTEBOOKS), help="some notebooks only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/refactor.json")
    args = parser.parse_args()
    from irt_nb.science.preparation import create_sample_database

    peers = peer_environment()
    work = Path(tempfile.mkdtemp(prefix="refactor-bench-"))
    databases = {
        "irt": {
            "db_path": str(create_sample_database(work / "sample.sqlite", seed=9, n_students=500))
        },
        "meters": {"db_path": str(meters_database(work / "meters.sqlite"))},
    }
    rows = {}
    for name in args.only or NOTEBOOKS:
        print(f"{name}: irt_nb ...", end=" ", flush=True)
        ours = prepared_copy(NOTEBOOKS[name], work / name / "irt_nb", databases.get(name, {}))
        theirs = prepared_copy(NOTEBOOKS[name], work / name / "soorgeon", databases.get(name, {}))
        rows[name] = {"irt_nb": run_irt_nb(ours, ours.parent)}
        print(
            f"{'passed' if rows[name]['irt_nb']['passed'] else 'failed'} "
            f"({rows[name]['irt_nb']['s']:.0f} s); soorgeon ...",
            end=" ",
            flush=True,
        )
        rows[name]["soorgeon"] = run_soorgeon(theirs, peers)
        print(
            f"{'passed' if rows[name]['soorgeon']['passed'] else 'failed'} ({rows[name]['soorgeon']['s']:.0f} s)"
        )
    totals = {}
    for tool in ("irt_nb", "soorgeon"):
        results = [row[tool] for row in rows.values()]
        totals[tool] = {
            "passed": sum(r["passed"] for r in results),
            "of": len(results),
            "median_s": round(statistics.median(r["s"] for r in results), 1),
            "median_s_passing": round(
                statistics.median([r["s"] for r in results if r["passed"]] or [0]), 1
            ),
        }
    record = {
        "what": "notebooks taken to a passing end: irt_nb = refactor + every draft run + golden test; "
        "soorgeon = soorgeon refactor + ploomber build (no check of the values)",
        "versions": {"soorgeon": "0.0.20", "ploomber": "0.23.3"},
        "cores": len(os.sched_getaffinity(0)),
        "totals": totals,
        "notebooks": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for tool, t in totals.items():
        print(
            f"{tool}: {t['passed']} of {t['of']} to a passing end, median {t['median_s']} s a notebook"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
