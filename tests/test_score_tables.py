"""`irt-nb score-table` on LSAT7 as an exam board would run it: fit, then the conversion table with a
reporting scale and a cut, checked against an independent sum over the 32 response patterns."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import LSAT7_ITEMS as ITEMS  # noqa: E402
from conftest import lsat7_wide, run


@pytest.fixture(scope="module")
def lsat(tmp_path_factory):
    "LSAT7 as a wide CSV (one row per examinee) and its 2PL model file from `irt-nb fit`."
    folder = tmp_path_factory.mktemp("lsat")
    patterns = lsat7_wide(folder / "lsat7.csv")
    fitted = run(
        "irt-nb", "fit", "lsat7.csv", "--wide", "--out", "lsat7.json", "--quiet", cwd=folder
    )
    assert fitted.returncode == 0, fitted.stderr
    return folder, patterns


def _brute_force_table(model_file):
    "EAP[θ | sum] and P(sum) by listing all 32 patterns, on a 201-point Gauss–Hermite rule of its own."
    items = json.loads(model_file.read_text())["items"]
    a = np.array([i["discrimination"] for i in items])
    b = np.array([i["difficulty"] for i in items])
    nodes, weights = np.polynomial.hermite_e.hermegauss(201)
    weights = weights / weights.sum()
    p = 1 / (1 + np.exp(-a * (nodes[:, None] - b)))
    by_sum = np.zeros((len(nodes), 6))
    for pattern in itertools.product([0, 1], repeat=5):
        pattern = np.array(pattern)
        by_sum[:, pattern.sum()] += np.prod(np.where(pattern, p, 1 - p), axis=1)
    joint = weights[:, None] * by_sum
    return nodes @ joint / joint.sum(axis=0), joint.sum(axis=0)


def test_the_lsat7_score_table_matches_a_sum_over_every_pattern(lsat):
    folder, patterns = lsat
    done = run(
        "irt-nb", "score-table", "lsat7.json", "--data", "lsat7.csv", "--wide", "--out", "table.csv",
        "--scale", "500 + 100*theta", "--round", "10", "--lowest", "200", "--highest", "800",
        "--cut", "450", "--cut-on", "scale", cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(folder / "table.csv")
    eap, proportion = _brute_force_table(folder / "lsat7.json")
    mean = proportion @ eap
    between = proportion @ (eap - mean) ** 2  # Var(EAP[θ | sum]); the prior's variance is 1
    np.testing.assert_allclose(table.theta, eap, atol=1e-6)
    np.testing.assert_allclose(table.expected_proportion, proportion, atol=1e-9)
    # observed counts straight from the published pattern frequencies
    observed = (
        patterns.groupby(patterns[ITEMS].sum(axis=1)).freq.sum().reindex(range(6), fill_value=0)
    )
    assert table.observed.tolist() == observed.tolist()
    assert abs(table.expected - table.observed).max() < 25  # the 2PL fits LSAT7's sum scores
    assert (
        table.scale_score.tolist()
        == (np.clip(np.round((500 + 100 * eap) / 10) * 10, 200, 800)).tolist()
    )
    summary = json.loads((folder / "table.json").read_text())
    assert (
        summary["persons_with_every_answer"] == 1000
        and summary["persons_with_a_missing_answer"] == 0
    )
    # marginal reliability = Var(EAP) / Var(θ): five easy items make a short, unreliable test
    assert summary["reliability"] == pytest.approx(between, abs=1e-6) and 0.3 < between < 0.6
    lee = summary["classification_summed_scores"]
    assert lee["cuts_theta"] == [pytest.approx(-0.5)]
    # Lee's accuracy and consistency are expectations under the model: simulate it (two forms per student)
    items = json.loads((folder / "lsat7.json").read_text())["items"]
    a, b = (np.array([i[k] for i in items]) for k in ("discrimination", "difficulty"))
    rng = np.random.default_rng(11)
    truth = rng.standard_normal(200_000)
    right = 1 / (1 + np.exp(-a * (truth[:, None] - b)))
    first, second = ((rng.random(right.shape) < right).sum(axis=1) for _ in range(2))
    above_first, above_second = (table.theta.to_numpy()[s] > -0.5 for s in (first, second))
    assert lee["accuracy"] == pytest.approx(np.mean(above_first == (truth > -0.5)), abs=0.005)
    assert lee["consistency"] == pytest.approx(np.mean(above_first == above_second), abs=0.005)
    at_cut = lee["at_cuts"][0]
    assert at_cut["false_positive"] + at_cut["false_negative"] == pytest.approx(1 - lee["accuracy"])
    conversion = pd.read_csv(folder / "table_conversion.csv")
    assert (
        list(conversion.columns) == ["raw_score", "scale_score", "scale_se"]
        and len(conversion) == 6
    )
    assert (folder / "table.png").stat().st_size > 10_000 and "reliability" in done.stdout


@pytest.mark.parametrize(
    "options, message",
    [
        (["--scale", "500 + 100*theta**2"], "'theta**2' is not allowed"),
        (["--scale", "500 - 100*theta"], "must increase with theta"),
        (["--round", "10"], "need --scale"),
        (["--cut", "1", "--cut", "1"], "cut scores must differ"),
    ],
)
def test_a_bad_scale_or_cut_is_one_line_and_exit_2(lsat, options, message):
    folder, _ = lsat
    done = run("irt-nb", "score-table", "lsat7.json", "--out", "bad.csv", *options, cwd=folder)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_students_with_a_missing_answer_are_counted_not_lost(lsat, tmp_path):
    folder, _ = lsat
    wide = pd.read_csv(folder / "lsat7.csv")
    wide.loc[:9, "Q3"] = np.nan
    wide["Q9"] = 1
    wide.to_csv(tmp_path / "gappy.csv", index=False)
    table = ("irt-nb", "score-table", str(folder / "lsat7.json"), "--data", "gappy.csv", "--wide")
    unknown = run(*table, "--out", "t.csv", cwd=tmp_path)
    assert unknown.returncode == 2 and "not in the model: ['Q9']" in unknown.stderr
    wide.drop(columns="Q9").to_csv(tmp_path / "gappy.csv", index=False)
    done = run(*table, "--out", "t.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "t.json").read_text())
    assert (summary["persons_with_every_answer"], summary["persons_with_a_missing_answer"]) == (
        990,
        10,
    )
    assert pd.read_csv(tmp_path / "t.csv").observed.sum() == 990
    assert "10 student(s) with a missing answer" in done.stdout


def test_a_saved_scale_travels_with_the_model_file_into_irt_nb_score(lsat):
    folder, _ = lsat
    (folder / "scaled.json").write_text((folder / "lsat7.json").read_text())
    saved = run(
        "irt-nb", "score-table", "scaled.json", "--out", "scaled_table.csv",
        "--scale", "500 + 100*theta", "--round", "10", "--save-scale", cwd=folder,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    scored = run(
        "irt-nb", "score", "scaled.json", "lsat7.csv", "--wide", "--out", "s.csv", cwd=folder
    )
    assert scored.returncode == 0, scored.stderr
    scores = pd.read_csv(folder / "s.csv")
    np.testing.assert_array_equal(
        scores.scale_score, np.round((500 + 100 * scores.theta) / 10) * 10
    )
    np.testing.assert_allclose(scores.scale_se, 100 * scores.se)
    refused = run(
        "irt-nb", "score-table", "scaled.json", "--out", "x.csv", "--save-scale", cwd=folder
    )
    assert refused.returncode == 2 and "--save-scale needs --scale" in refused.stderr
