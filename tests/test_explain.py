"""`irt-nb explain` on LSAT7: one student's score step by step, equal to what `irt-nb score` gives them."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import lsat7_wide, run


@pytest.fixture(scope="module")
def lsat(tmp_path_factory):
    "LSAT7 as a wide CSV with a few answers blanked, its 2PL model and every student's EAP score."
    folder = tmp_path_factory.mktemp("explain")
    lsat7_wide(folder / "lsat7.csv", blank={"Q2": [3, 500]})  # a skipped question is explained too
    wide = pd.read_csv(folder / "lsat7.csv")
    for command in (
        ("fit", "lsat7.csv", "--wide", "--out", "lsat7.json", "--quiet"),
        ("score", "lsat7.json", "lsat7.csv", "--wide", "--out", "scores.csv"),
    ):
        done = run("irt-nb", *command, cwd=folder)
        assert done.returncode == 0, done.stderr
    return folder, wide, pd.read_csv(folder / "scores.csv").set_index("student_id")


@pytest.mark.parametrize("student", ["s0003", "s0999"])
def test_the_explanation_adds_up_to_the_score_the_student_gets(lsat, student):
    folder, wide, scores = lsat
    done = run(
        "irt-nb", "explain", "lsat7.json", "--student", student, "--data", "lsat7.csv", "--wide",
        "--json", f"{student}.json", cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    explained = json.loads((folder / f"{student}.json").read_text())
    assert explained["theta"] == pytest.approx(scores.theta[student], abs=1e-9)
    assert explained["se"] == pytest.approx(scores.se[student], abs=1e-9)
    answered = wide.set_index("student_id").loc[student].dropna()
    assert [a["item_id"] for a in explained["answers"]] == list(answered.index)
    assert [a["answer"] for a in explained["answers"]] == answered.astype(int).tolist()
    # the terms are what the 2PL says: log P or log(1 − P) at each node
    nodes = np.array(explained["nodes"])
    for a in explained["answers"]:
        p = 1 / (1 + np.exp(-a["discrimination"] * (nodes - a["difficulty"])))
        expected = np.log(p) if a["answer"] else np.log1p(-p)
        np.testing.assert_allclose(a["log_likelihood"], expected, atol=1e-9)
    log_post = np.array(explained["log_prior"]) + sum(
        np.array(a["log_likelihood"]) for a in explained["answers"]
    )
    posterior = np.exp(log_post - log_post.max())
    np.testing.assert_allclose(posterior / posterior.sum(), explained["posterior"], atol=1e-12)
    assert f"EAP θ = {scores.theta[student]:.6f}" in done.stdout


@pytest.mark.parametrize(
    "options, message",
    [
        (["--student", "nobody", "--data", "lsat7.csv", "--wide"], "student 'nobody' is not in"),
        (
            ["--student", "s0001"],
            "explain needs the student's answers: --data SOURCE, or --students-store",
        ),
    ],
)
def test_a_bad_request_is_one_line_and_exit_2(lsat, options, message):
    folder, _, _ = lsat
    done = run("irt-nb", "explain", "lsat7.json", *options, cwd=folder)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_adaptive_students_answers_are_explained_from_the_student_store(lsat, tmp_path):
    "The answers a student gave through /v1/answers, as `irt-nb explain --students-store` reads them."
    from irt_nb.science.adaptive import AdaptiveEngine
    from irt_nb.science.model_file import load_model
    from irt_nb.serving.registry import version_id
    from irt_nb.serving.student_store import StudentStore

    folder, _, _ = lsat
    model_file, store_url = folder / "lsat7.json", f"sqlite:///{tmp_path / 'students.sqlite'}"
    engine = AdaptiveEngine(load_model(model_file))
    version = version_id(json.loads(model_file.read_text()))
    answers = [("Q1", 1), ("Q3", 0), ("Q4", 1)]
    state = StudentStore(store_url).record(version, "ana", answers, engine, engine.start)
    done = run(
        "irt-nb", "explain", model_file, "--student", "ana", "--students-store", store_url,
        "--json", tmp_path / "ana.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    explained = json.loads((tmp_path / "ana.json").read_text())
    assert [(a["item_id"], a["answer"]) for a in explained["answers"]] == answers
    assert explained["theta"] == pytest.approx(engine.estimate(state)[0], abs=1e-10)
    assert explained["prior"]["source"] == "group prior"
    unknown = run(
        "irt-nb", "explain", model_file, "--student", "bob", "--students-store", store_url
    )
    assert unknown.returncode == 2 and "no answers of student 'bob'" in unknown.stderr
