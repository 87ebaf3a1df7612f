"""The polytomous calibration report (`irt-nb report --notebook polytomous`), run with a real kernel."""

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import run

from irt_nb.science.polytomous import (
    PolytomousSettings,
    encode_scores,
    fit_polytomous,
    load_polytomous_model,
    score_polytomous,
)
from irt_nb.science.polytomous_report import read_scores, simulate_scores

SLOPES = [0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
STEPS = [np.cumsum([1.0, 0.2, -1.0]) + shift for shift in np.linspace(-0.8, 0.8, 6)]  # GPCM d's


@pytest.fixture(scope="module")
def gpcm_answers(tmp_path_factory):
    "A long CSV of 1500 students' answers to six four-category GPCM items; item06 is scored 2, 4, 6, 8."
    wide = simulate_scores(
        kind="gpcm",
        discrimination=SLOPES,
        intercepts=STEPS,
        n_persons=1500,
        seed=11,
        missing=0.05,
    )
    wide["item06"] = 2 * wide["item06"] + 2
    long = wide.melt(id_vars="student_id", var_name="item_id", value_name="points").dropna()
    path = tmp_path_factory.mktemp("polytomous") / "answers.csv"
    long.to_csv(path, index=False)
    return path


def report(out, *options):
    return run(
        "irt-nb",
        "report",
        "--notebook",
        "polytomous",
        "--quiet",
        "--output-dir",
        str(out),
        *options,
    )


def test_the_report_writes_the_fit_the_comparison_and_the_tables_of_the_package(
    gpcm_answers, tmp_path
):
    out = tmp_path / "out"
    result = report(
        out,
        *("-p", "source", str(gpcm_answers), "-p", "columns", "score=points"),
        *("-p", "model", "gpcm", "-p", "n_quadrature", "31"),
    )
    assert result.returncode == 0, result.stderr
    frame, id_column = read_scores(gpcm_answers, columns={"score": "points"})
    with pytest.warns(UserWarning, match=r"item 'item06': score\(s\) \[3, 5, 7\] never occur"):
        scored = encode_scores(frame, id_column=id_column)
    # fitted as the report fits its model: with standard errors, so ending with the Newton step from the information
    direct = fit_polytomous(scored, model="gpcm", settings=PolytomousSettings(n_quadrature=31))
    # the comparison's numbers are each fit's own log-likelihood and parameters through AIC and BIC
    comparison = pd.read_csv(out / "comparison.csv").set_index("model")
    assert comparison.index.tolist() == ["grm", "gpcm"]
    gpcm = comparison.loc["gpcm"]
    assert gpcm.log_likelihood == pytest.approx(direct.log_likelihood, abs=1e-6)
    assert gpcm.n_parameters == direct.n_parameters == 6 * 4 and gpcm.n_persons == 1500
    assert gpcm.aic == pytest.approx(-2 * direct.log_likelihood + 2 * 24, abs=1e-5)
    assert gpcm.bic == pytest.approx(-2 * direct.log_likelihood + 24 * np.log(1500), abs=1e-5)
    grm = comparison.loc["grm"]
    assert grm.aic == pytest.approx(-2 * grm.log_likelihood + 2 * grm.n_parameters)
    assert gpcm.bic < grm.bic  # GPCM data: the GPCM is preferred
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["comparison"]["preferred_bic"] == metrics["comparison"]["preferred_aic"] == "gpcm"
    )
    assert metrics["loglik"] == pytest.approx(direct.log_likelihood, abs=1e-6)
    assert metrics["data_fingerprint"] == direct.data_fingerprint
    # the model file is the fit
    saved = load_polytomous_model(out / "model.json")
    np.testing.assert_allclose(saved.discrimination, direct.discrimination, atol=1e-6)
    assert saved.categories[5] == (2, 4, 6, 8) and saved.kinds == ("gpcm",) * 6
    # the tables: one row per item, per item and score, per step, per student
    items = pd.read_csv(out / "items.csv")
    assert items.item.tolist() == list(scored.item_ids)
    assert items.n_responses.tolist() == (scored.codes >= 0).sum(axis=0).tolist()
    categories = pd.read_csv(out / "categories.csv")
    assert categories[categories.item == "item06"].score.tolist() == [2, 4, 6, 8]
    assert categories["count"].sum() == (scored.codes >= 0).sum()
    assert (categories.observed - categories.expected).abs().max() < 0.03
    assert len(pd.read_csv(out / "thresholds.csv")) == 6 * 3
    per_item = pd.read_csv(out / "comparison_items.csv")
    assert (per_item.closer == "gpcm").sum() >= 5, per_item.closer.tolist()  # 6 of 6 when written
    abilities = pd.read_csv(out / "abilities.csv")
    expected = score_polytomous(direct, scored, method="eap")
    assert abilities.person.tolist() == expected.person.tolist()
    np.testing.assert_allclose(abilities.theta, expected.theta, atol=1e-5)
    html = (out / "polytomous_report.html").read_text()
    images = html.count("data:image/png;base64")
    assert images >= 4  # curves, information, expected scores, abilities
    assert "BIC prefers the GPCM" in html and "is the preferred one" in html
    assert "score(s) [3, 5, 7] never occur" in html  # the closed-up scores are said, not hidden
    assert "from irt_nb.science.polytomous import" not in html  # code cells hidden
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html  # no warning blocks


def test_the_report_says_when_the_other_kind_is_preferred(gpcm_answers, tmp_path):
    result = report(
        tmp_path / "out",
        *("-p", "source", str(gpcm_answers), "-p", "columns", "score=points"),
        *("-p", "model", "grm", "-p", "n_quadrature", "21"),
    )
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "polytomous_report.html").read_text()
    assert "BIC prefers the GPCM" in html and "consider <code>-p model gpcm</code>" in html


def test_bad_parameters_are_refused_before_the_kernel_starts(tmp_path):
    result = report(tmp_path / "out", "-p", "model", "2pl", "-p", "attempt_policy", "best")
    assert result.returncode == 2
    assert "parameter 'source' is required" in result.stderr
    assert "parameter 'model' must be one of ['grm', 'gpcm', 'pcm'], got '2pl'" in result.stderr
    assert "parameter 'attempt_policy' must be one of ['first', 'last', 'any']" in result.stderr
    assert not (tmp_path / "out").exists()
    calibration = run(
        "irt-nb", "report", "--quiet", "--output-dir", str(tmp_path / "c"), "-p", "model", "grm"
    )
    assert calibration.returncode == 2
    assert "(the polytomous report takes it: irt-nb report --notebook polytomous)" in (
        calibration.stderr
    )


def test_a_bad_score_fails_the_run_naming_its_row_and_column(tmp_path):
    pd.DataFrame({"sid": ["a", "b", "c"], "q1": [1, 2.5, 0], "q2": [0, 1, 1]}).to_csv(
        tmp_path / "wide.csv", index=False
    )
    result = report(
        tmp_path / "out", "-p", "source", str(tmp_path / "wide.csv"), "-p", "wide", "true"
    )
    assert result.returncode == 1
    assert "the report failed in cell" in result.stderr
    assert "column 'q1', row 2 (id 'b'): score '2.5' is not an integer" in result.stderr
    executed = nbformat.read(tmp_path / "out/polytomous_report.ipynb", as_version=4)
    assert any(
        o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", [])
    )
