"""The package as engineers get it: a wheel installed into a clean virtualenv outside the checkout.

The core install (no extras) must fit a matrix and a plain three-column CSV, and name the extra a
command needs; with `[all]` every command works from a temporary folder, the report notebook included.
Versions are held to requirements.lock (`-c`), so the test installs what the README commands install.
The installs go through uv (pinned in the lock; `make setup` uses it too): it reads the wheel's metadata and
extras as pip does, in seconds instead of the three minutes pip took on 2 cores.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT
from servers import free_port


def _run(env: Path, *args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    "A command of the virtualenv `env`, from `cwd`, with nothing of the checkout on the path."
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = f"{env / 'bin'}{os.pathsep}{clean.get('PATH', '')}"
    result = subprocess.run(
        [str(env / "bin" / args[0]), *map(str, args[1:])],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check:
        assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    "The wheel `pip wheel .` builds from the checkout."
    out = tmp_path_factory.mktemp("dist")
    source = out / "source"  # a copy: setuptools' build/ folder stays out of the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "irt_nb", "nbs"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        kwargs = {"symlinks": True, "ignore": shutil.ignore_patterns("__pycache__")}
        copy(ROOT / name, source / name, **(kwargs if copy is shutil.copytree else {}))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return next(out.glob("irt_nb-*.whl"))


@pytest.fixture(scope="module")
def core(tmp_path_factory, wheel) -> Path:
    "A fresh virtualenv with the wheel and its core dependencies only."
    env = tmp_path_factory.mktemp("venv") / "core"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    _install(env, str(wheel))
    return env


def _install(env: Path, requirement: str) -> None:
    "Install `requirement` into the virtualenv `env`, versions held to requirements.lock."
    uv = Path(sys.executable).parent / "uv"  # the project's own, pinned in requirements.lock
    command = [str(uv), "pip", "install", "--quiet", "--python", str(env / "bin" / "python")]
    command += ["-c", str(ROOT / "requirements.lock"), requirement]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{requirement}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    "A folder outside the checkout with the sample data as a plain CSV and as a wide CSV."
    folder = tmp_path_factory.mktemp("work")
    from irt_nb.science.preparation import create_sample_database

    db = create_sample_database(folder / "sample.sqlite", seed=4, n_students=800)
    with sqlite3.connect(db) as con:
        answers = pd.read_sql(
            "SELECT student_id, item_id, correct FROM responses WHERE exam = ? AND subject = ?",
            con,
            params=("2026-spring", "math"),
        )
    answers.to_csv(folder / "answers.csv", index=False)  # student_id,item_id,correct: nothing else
    first = answers.drop_duplicates(["student_id", "item_id"])
    first.pivot(index="student_id", columns="item_id", values="correct").to_csv(
        folder / "wide.csv", na_rep="NA"
    )
    return folder


def test_the_core_install_fits_and_names_the_extra_a_command_needs(core, work):
    imported = _run(core, "python", "-c", "import irt_nb; print(irt_nb.__file__)", cwd=work)
    assert str(core) in imported.stdout  # the installed package, not the checkout
    fitted = _run(
        core,
        "python",
        "-c",
        "import numpy as np; from irt_nb.science.calculation import fit_irt\n"
        "rng = np.random.default_rng(0); theta = rng.standard_normal(2000)\n"
        "x = (rng.random((2000, 8)) < 1 / (1 + np.exp(-(theta[:, None] - np.linspace(-1, 1, 8))))).astype(float)\n"
        "m = fit_irt(x); print(m.converged, round(float(np.corrcoef(m.difficulty, np.linspace(-1, 1, 8))[0, 1]), 3))",
        cwd=work,
    )
    converged, correlation = fitted.stdout.split()
    assert converged == "True" and float(correlation) > 0.98
    plain = _run(core, "irt-nb", "fit", "answers.csv", "--out", "plain.json", "--quiet", cwd=work)
    assert "converged=True" in plain.stdout and (work / "plain.json").is_file()
    diagnosed = _run(
        core, "irt-nb", "diagnose", "plain.json", "answers.csv", "--out", "fit", cwd=work
    )
    assert "M2 = " in diagnosed.stdout and (work / "fit" / "item_fit.csv").is_file()
    for command, extra in (
        (["serve", "--model", "plain.json"], "api"),
        (["report", "-p", "source", "answers.csv"], "report"),
        (["fit", "sqlite:///sample.sqlite", "--out", "db.json"], "sql"),
    ):
        refused = _run(core, "irt-nb", *command, cwd=work, check=False)
        assert refused.returncode == 2, refused.stderr
        assert f"pip install 'irt_nb[{extra}]'" in refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.splitlines()) == 1


def test_with_all_extras_every_command_works_outside_the_checkout(core, wheel, work):
    _install(core, f"{wheel}[all]")
    _run(core, "irt-nb", "sample", "--out", "own.sqlite", "--students", "500", cwd=work)
    long = _run(
        core,
        "irt-nb",
        "fit",
        "sqlite:///own.sqlite",
        "--exam",
        "2026-spring",
        "--subject",
        "math",
        "--out",
        "long.json",
        "--quiet",
        "--tol",
        "1e-5",
        "--max-iter",
        "200",
        cwd=work,
    )
    assert "converged=True" in long.stdout
    wide = _run(
        core, "irt-nb", "fit", "wide.csv", "--wide", "--out", "wide.json", "--quiet", cwd=work
    )
    assert "800 persons x 30 items" in wide.stdout
    _run(core, "irt-nb", "score", "wide.json", "answers.csv", "--out", "scores.parquet", cwd=work)
    scores = pd.read_parquet(work / "scores.parquet")
    assert len(scores) == 800 and list(scores.columns) == [
        "student_id",
        "theta",
        "se",
        "n_responses",
    ]
    report = _run(
        core,
        "irt-nb",
        "report",
        "-p",
        "source",
        "sqlite:///own.sqlite",
        "--output-dir",
        "report",
        "--quiet",
        cwd=work,
    )
    assert (work / "report" / "calibration_report.html").is_file(), report.stdout
    # linking two cohorts, DIF by language, and the adaptive simulation study, from the wheel
    new_form = ["--exam", "2027-spring", "--subject", "math", "--out", "new.json", "--quiet"]
    _run(core, "irt-nb", "fit", "sqlite:///own.sqlite", *new_form, cwd=work)
    _run(
        core,
        "irt-nb",
        "link",
        "long.json",
        "new.json",
        "--method",
        "stocking-lord",
        "--out",
        "linked.json",
        cwd=work,
    )
    assert json.loads((work / "linked.json").read_text())["metadata"]["linking"]["A"] > 0
    by_language = ["--exam", "2026-spring", "--subject", "math", "--group", "language"]
    _run(core, "irt-nb", "dif", "sqlite:///own.sqlite", *by_language, "--out", "dif.csv", cwd=work)
    assert len(pd.read_csv(work / "dif.csv")) == 30
    small = [
        "-p",
        "bank_size",
        "60",
        "-p",
        "n_students",
        "30",
        "-p",
        "max_length",
        "8",
        "-p",
        "catsim_students",
        "5",
    ]
    _run(
        core,
        "irt-nb",
        "report",
        "--notebook",
        "adaptive-simulation",
        *small,
        "--output-dir",
        "sim",
        "--quiet",
        cwd=work,
    )
    assert (work / "sim" / "adaptive_simulation.html").is_file()
    port = free_port()
    server = subprocess.Popen(
        [
            str(core / "bin" / "irt-nb"),
            "serve",
            "--model",
            "report/model.json",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=work,
    )
    try:
        body = None
        for _ in range(150):
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/probabilities",
                    data=b'{"student_id": "S00001", "items": ["M001"]}',
                    headers={"content-type": "application/json"},
                )
                body = urllib.request.urlopen(request, timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None and b'"source":"student_id"' in body, body
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/next-item",
            data=b'{"student_id": "S00001", "selector": "pwi"}',
            headers={"content-type": "application/json"},
        )
        assert json.loads(urllib.request.urlopen(request, timeout=5).read())["items"][0]["reason"]
    finally:
        server.terminate()
        server.wait(timeout=20)
