"""The command line as a new user meets it: plain files, wide files, scoring, and one-line errors."""

import json

import pandas as pd
import pytest
from conftest import run

from irt_nb.science.model_file import load_model
from irt_nb.science.preparation import create_sample_database


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    "A sample database, its answers as a plain CSV, and a model fitted to the math items."
    folder = tmp_path_factory.mktemp("cli")
    db = create_sample_database(folder / "sample.sqlite", seed=5, n_students=600)
    result = run(
        "irt-nb",
        "fit",
        f"sqlite:///{db}",
        "--exam",
        "2026-spring",
        "--subject",
        "math",
        "--out",
        str(folder / "math.json"),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    import sqlite3

    with sqlite3.connect(db) as con:
        answers = pd.read_sql(
            "SELECT student_id, item_id, correct FROM responses WHERE exam = '2026-spring'", con
        )
    answers.to_csv(folder / "both_subjects.csv", index=False)
    return folder


def test_score_names_unknown_items_or_skips_them(files):
    refused = run("irt-nb", "score", str(files / "math.json"), str(files / "both_subjects.csv"))
    assert refused.returncode == 2
    assert "item(s) in the data are not in the model: ['R" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    out = files / "scores.jsonl"
    skipped = run(
        "irt-nb",
        "score",
        str(files / "math.json"),
        str(files / "both_subjects.csv"),
        "--unknown-items",
        "skip",
        "--method",
        "ml",
        "--out",
        str(out),
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "item(s) not in the model were left out" in skipped.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 600  # every student of the exam, math answers or not
    scored = {r["student_id"]: r for r in rows}
    calibrated = load_model(files / "math.json").abilities.ids()
    assert set(calibrated) <= set(scored) and all(r["n_responses"] > 0 for r in scored.values())


def test_the_model_file_uses_the_input_vocabulary(files):
    doc = json.loads((files / "math.json").read_text())
    assert doc["format"] == "irt_nb.model/2"
    assert set(doc["items"][0]) >= {"item_id", "discrimination", "difficulty", "intercept"}
    assert isinstance(doc["loglik"], float) and doc["converged"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no answers in {path}: the file is empty"),
        ("student_id,item_id,correct\n", "no answers in {path}: it has no rows"),
    ],
)
def test_an_empty_file_says_there_are_no_answers(tmp_path, content, message):
    path = tmp_path / "answers.csv"
    path.write_text(content)
    result = run("irt-nb", "fit", str(path), "--out", str(tmp_path / "m.json"))
    assert result.returncode == 2
    assert result.stderr == f"irt-nb fit: {message.format(path=path)}\n"


def test_misleading_inputs_get_one_line_and_exit_2(files, tmp_path):
    db = files / "sample.sqlite"
    cases = {
        (str(db),): f"{db} is a SQLite database: give it as sqlite:///{db}",
        (f"sqlite:///{tmp_path}/missing.db",): "no such database file",
        (f"sqlite:///{db}", "--exam", "2026-sprng"): "exam '2026-sprng' matches no row",
        (
            f"sqlite:///{db}",
            "--since",
            "2027-01-01",
            "--until",
            "2026-01-01",
        ): "is not before until",
    }
    for args, message in cases.items():
        result = run("irt-nb", "fit", *args, "--out", str(tmp_path / "m.json"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "missing.db").exists()  # not created by the attempt


def test_an_output_folder_that_cannot_be_written_is_one_line(files, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    result = run(
        "irt-nb",
        "fit",
        str(files / "both_subjects.csv"),
        "--out",
        str(blocker / "m.json"),
        "--quiet",
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "not_a_folder" in result.stderr and "Traceback" not in result.stderr


def test_fit_keeps_items_with_few_answers_and_names_them_on_stderr(files, tmp_path):
    "`fit` drops nothing by default (min 1) but warns, naming the items below the library's 30 answers."
    answers = pd.read_csv(files / "both_subjects.csv")
    rare = answers[answers.item_id == answers.item_id.iloc[0]].head(12).assign(item_id="RARE")
    pd.concat([answers, rare]).to_csv(tmp_path / "rare.csv", index=False)
    kept = run(
        "irt-nb", "fit", str(tmp_path / "rare.csv"), "--out", str(tmp_path / "m.json"), "--quiet"
    )
    assert kept.returncode == 0, kept.stderr
    warned = [line for line in kept.stderr.splitlines() if "fewer than 30 answers" in line]
    assert warned == [
        "warning: 1 item(s) have fewer than 30 answers, so their estimates are unstable "
        "(--min-item-responses 30 drops them, as the calibration report does): ['RARE']"
    ]
    assert "RARE" in load_model(tmp_path / "m.json").item_ids
    dropped = run(
        "irt-nb",
        "fit",
        str(tmp_path / "rare.csv"),
        "--out",
        str(tmp_path / "m30.json"),
        "--quiet",
        "--min-item-responses",
        "30",
    )
    assert dropped.returncode == 0 and "fewer than 30 answers" not in dropped.stderr
    assert "1 items with fewer than 30 responses: RARE" in dropped.stdout
