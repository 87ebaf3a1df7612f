"""Comparable and fair: linking forms onto one scale, multiple-group and fixed-parameter calibration, DIF.

Every check recovers something planted: a scale shift between cohorts, a cohort's mean and SD, items
that are harder for one group. The sample-database tests run the real command line on the planted
effects of `irt-nb sample`.
"""

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import run
from scipy.special import expit

from irt_nb.science.calculation import EMSettings, fit_irt
from irt_nb.science.dif import adjust_p, dif_analysis, mantel_haenszel, mh_tables
from irt_nb.science.item_models import probability_correct
from irt_nb.science.linking import (
    METHODS,
    anchor_values,
    link_models,
    linking_constants,
    true_score_equating,
)
from irt_nb.science.model_file import load_model, save_model
from irt_nb.science.multigroup import GroupLayout, _problem, fit_multigroup
from irt_nb.science.preparation import SAMPLE_COHORT, create_sample_database
from irt_nb.science.scoring import score_persons
from irt_nb.serving.stores import response_codes


def _forms(seed: int, mean: float, sd: float, n: int = 3000, drift: dict | None = None):
    "An old form (items 0-29, cohort N(0, 1)) and a new form (items 18-47, cohort N(mean, sd²)): 12 anchors."
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 0.25, 48), rng.normal(0, 1, 48)
    b_later = b.copy()
    for item, shift in (drift or {}).items():  # anchors whose difficulty changed between the forms
        b_later[item] += shift

    def calibrate(items, m, s, difficulty):
        theta = rng.normal(m, s, n)
        p = probability_correct(theta, a[items], difficulty[items])
        return (rng.random((n, len(items))) < p).astype(float), [f"Q{j}" for j in items]

    return calibrate(np.r_[0:30], 0, 1, b), calibrate(np.r_[18:48], mean, sd, b_later)


def test_linking_recovers_a_planted_scale_shift_within_its_standard_errors():
    (x_old, ids_old), (x_new, ids_new) = _forms(seed=21, mean=0.5, sd=1.2)
    old = fit_irt(x_old, item_ids=ids_old, progress=False)
    new = fit_irt(x_new, item_ids=ids_new, progress=False)
    for method in METHODS:
        c = linking_constants(old, new, method)
        assert len(c.anchors) == 12 and 0.005 < c.se_A < 0.1 and 0.005 < c.se_B < 0.1, c
        assert abs(c.A - 1.2) < 2 * c.se_A, (method, c.A, c.se_A)
        assert abs(c.B - 0.5) < 2 * c.se_B, (method, c.B, c.se_B)
    linked = link_models(old, new, "stocking-lord")
    assert linked.drifted == []
    anchors = [old.item_ids.index(i) for i in linked.constants.anchors]
    moved = [linked.model.item_ids.index(i) for i in linked.constants.anchors]
    assert np.abs(linked.model.difficulty[moved] - old.difficulty[anchors]).max() < 0.3
    table = true_score_equating(old, linked.model)
    assert list(table.new_score) == list(range(31))
    assert (np.diff(table.old_equivalent) > 0).all()  # monotone
    assert table.old_equivalent.iloc[0] == 0 and table.old_equivalent.iloc[-1] == 30


def test_a_drifted_anchor_is_flagged_and_dropping_it_restores_the_constants():
    (x_old, ids_old), (x_new, ids_new) = _forms(seed=22, mean=0.5, sd=1.2, drift={20: -0.8})
    old = fit_irt(x_old, item_ids=ids_old, progress=False)
    new = fit_irt(x_new, item_ids=ids_new, progress=False)
    first = link_models(old, new, "stocking-lord")
    worst = first.displacement.set_index("item_id").robust_z.abs().idxmax()
    assert worst == "Q20" and "Q20" in first.drifted
    again = link_models(old, new, "stocking-lord", drop_drifted=True)
    assert again.dropped == ["Q20"] and again.drifted == [] and "Q20" not in again.constants.anchors
    assert abs(again.constants.A - 1.2) < 2 * again.constants.se_A
    assert abs(again.constants.B - 0.5) < 2 * again.constants.se_B
    assert abs(first.constants.B - 0.5) > abs(again.constants.B - 0.5)


def test_fixed_parameter_calibration_recovers_the_cohorts_mean_and_sd():
    (x_old, ids_old), (x_new, ids_new) = _forms(seed=23, mean=0.5, sd=1.2, n=4000)
    old = fit_irt(x_old, item_ids=ids_old, progress=False)
    fixed = fit_multigroup(x_new, item_ids=ids_new, fixed=anchor_values(old, ids_new))
    cohort = fixed.group()
    assert cohort.free and 0.01 < cohort.se_mean < 0.05 and 0.01 < cohort.se_sd < 0.05
    assert abs(cohort.mean - 0.5) < 2 * cohort.se_mean, cohort
    assert abs(cohort.sd - 1.2) < 2 * cohort.se_sd, cohort
    held = fixed.fixed.sum()
    assert held == 12 and np.allclose(fixed.difficulty[fixed.fixed], old.difficulty[18:30])
    # Holding the cohort at N(0, 1) instead pulls the free items off the old scale.
    pinned = fit_irt(x_new, item_ids=ids_new, fixed=anchor_values(old, ids_new), progress=False)
    free = ~fixed.fixed
    assert np.abs(pinned.difficulty[free] - fixed.difficulty[free]).mean() > 0.1


def test_the_multiple_group_likelihood_reduces_to_the_single_group_one():
    rng = np.random.default_rng(24)
    a, b = rng.lognormal(0, 0.25, 15), rng.normal(0, 1, 15)
    x = (rng.random((2000, 15)) < probability_correct(rng.standard_normal(2000), a, b)).astype(
        float
    )
    x[rng.random(x.shape) < 0.2] = np.nan
    labels = rng.choice(["p", "q", "r"], 2000)
    one = fit_irt(x, tol_param=1e-8, progress=False)
    layout = GroupLayout.build(response_codes(x), labels, one.item_ids)
    problem = _problem(layout, one.kind, None, EMSettings(), None)
    loglik = problem.e_step(one.item_params, np.zeros((3, 2)))[2]
    assert abs(loglik - one.loglik) < 1e-9 * abs(one.loglik)
    many = fit_multigroup(x, labels, tol_param=1e-8)
    assert many.loglik >= one.loglik - 1e-6  # nested: the groups' freedom never lowers it
    assert many.loglik - one.loglik < 5  # ... and identical groups gain little (chi2 with 4 df)
    # the same items up to the scale, which the reference third of the sample now sets alone
    assert np.corrcoef(many.difficulty, one.difficulty)[0, 1] > 0.999
    assert np.corrcoef(many.discrimination, one.discrimination)[0, 1] > 0.995
    assert all(abs(g.mean) < 3 * g.se_mean for g in many.groups[1:])


def test_groups_travel_in_the_model_file_and_scoring_uses_each_groups_prior(tmp_path):
    rng = np.random.default_rng(25)
    a, b = rng.lognormal(0, 0.25, 12), rng.normal(0, 1, 12)
    labels = np.repeat(["ref", "focal"], 1500)
    theta = np.where(labels == "ref", 0, 0.8) + rng.standard_normal(3000)
    x = (rng.random((3000, 12)) < probability_correct(theta, a, b)).astype(float)
    fitted = fit_multigroup(
        x, labels, reference="ref", free_items={"3": ["focal"]}, group_column="lang"
    )
    loaded = load_model(save_model(fitted, tmp_path / "groups.json"))
    assert [g.name for g in loaded.groups] == ["ref", "focal"] and loaded.group_column == "lang"
    assert loaded.group("focal") == fitted.group("focal") and "3" in loaded.group("focal").items
    focal = loaded.group("focal")
    answers = x[:3]
    scored = score_persons(loaded, answers, group="focal")
    # the direct computation: the posterior mean on a fine grid under N(mean, sd²) and the focal items
    grid = np.linspace(-8, 8, 4001)
    p = loaded.kind.probability(grid, loaded.group_params("focal"))
    like = np.exp(answers @ np.log(p).T + (1 - answers) @ np.log1p(-p).T)
    prior = np.exp(-0.5 * ((grid - focal.mean) / focal.sd) ** 2)
    direct = (like * prior) @ grid / (like * prior).sum(axis=1)
    assert np.allclose(scored.theta, direct, atol=1e-6)
    from starlette.testclient import TestClient

    from irt_nb.serving.api.app import create_app

    client = TestClient(create_app(loaded))
    answers_0 = {str(j): int(v) for j, v in enumerate(answers[0])}
    reply = client.post("/v1/abilities", json={"responses": answers_0, "group": "focal"}).json()
    assert reply["theta"] == pytest.approx(scored.theta[0], abs=1e-12)
    unknown = client.post("/v1/abilities", json={"responses": answers_0, "group": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["path"] == "$.group"
    per_person = score_persons(loaded, x[:6], group=np.array(["focal"] * 3 + ["ref"] * 3))
    assert np.allclose(per_person.theta[:3], scored.theta)
    assert np.allclose(per_person.theta[3:], score_persons(loaded, x[3:6], group="ref").theta)


def test_mantel_haenszel_matches_a_direct_computation_from_the_2x2xk_tables():
    rng = np.random.default_rng(26)
    n = 1200
    codes = (rng.random((n, 4)) < 0.6).astype(np.int8)
    focal = rng.random(n) < 0.4
    strata = [rng.integers(0, 6, n) for _ in range(4)]
    tables = mh_tables(codes, focal, strata)
    result = mantel_haenszel(tables)
    for j in range(4):
        num = den = obs = exp = var = 0.0
        for k in range(6):
            s = strata[j] == k
            A = np.sum(s & ~focal & (codes[:, j] == 1))
            B = np.sum(s & ~focal & (codes[:, j] == 0))
            C = np.sum(s & focal & (codes[:, j] == 1))
            D = np.sum(s & focal & (codes[:, j] == 0))
            assert (A, B, C, D) == tuple(tables[j, k])
            T = A + B + C + D
            num, den = num + A * D / T, den + B * C / T
            obs, exp = obs + A, exp + (A + B) * (A + C) / T
            var += (A + B) * (C + D) * (A + C) * (B + D) / (T**2 * (T - 1))
        alpha = num / den
        chi = (abs(obs - exp) - 0.5) ** 2 / var
        assert result.mh_alpha[j] == pytest.approx(alpha, rel=1e-12)
        assert result.mh_delta[j] == pytest.approx(-2.35 * np.log(alpha), rel=1e-12)
        assert result.mh_chi2[j] == pytest.approx(chi, rel=1e-12)


def test_p_value_adjustments_match_their_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    assert np.allclose(adjust_p(p, "holm"), [0.04, 0.09, 0.09, 0.025, 0.5])
    assert np.allclose(adjust_p(p, "bh"), [0.025, 0.05, 0.05, 0.025, 0.5])


def test_dif_finds_planted_items_and_keeps_false_positives_near_the_nominal_level():
    "16 seeded repetitions: 1,000 students per group, impact -0.5 (not DIF), 3 of 20 items 0.6 harder."
    power, lr_false, mh_false, flagged_false = [], [], [], []
    for rep in range(16):
        rng = np.random.default_rng([2026, rep])
        a, b = rng.lognormal(0, 0.25, 20), rng.normal(0, 1, 20)
        labels = np.repeat(["ref", "focal"], 1000)
        theta = np.where(labels == "ref", 0, -0.5) + rng.standard_normal(2000)
        planted = np.isin(np.arange(20), [2, 9, 15])
        shift = np.where(labels[:, None] == "focal", planted * 0.6, 0)
        x = (rng.random((2000, 20)) < expit(a * (theta[:, None] - b - shift))).astype(float)
        table = dif_analysis(x, labels, reference="ref").table
        power.append(table.flagged[planted].mean())
        lr_false.append((table.lr_p[~planted] < 0.05).mean())
        mh_false.append((table.mh_p[~planted] < 0.05).mean())
        flagged_false.append(table.flagged[~planted].mean())
        # harder for the focal group on P's scale, and far more than the clean items' noise
        assert (table.signed_area[planted] > 0.02).all()
        assert np.abs(table.signed_area[~planted]).median() < table.signed_area[planted].min()
    rates = {
        "power (planted items flagged, BH 0.05)": np.mean(power),
        "LR false positives, unadjusted 0.05": np.mean(lr_false),
        "MH false positives, unadjusted 0.05": np.mean(mh_false),
        "clean items flagged after BH": np.mean(flagged_false),
    }
    print(json.dumps(rates, indent=1))
    assert rates["power (planted items flagged, BH 0.05)"] >= 0.85
    assert rates["LR false positives, unadjusted 0.05"] <= 0.075  # 272 clean tests: nominal 0.05
    assert rates["MH false positives, unadjusted 0.05"] <= 0.085
    assert rates["clean items flagged after BH"] <= 0.03


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    "The sample database with its planted DIF (language) and 2027 cohort shift, and the spring/2027 math models."
    folder = tmp_path_factory.mktemp("linkdif")
    db = create_sample_database(folder / "sample.sqlite", seed=0)
    for exam, name in (("2026-spring", "old"), ("2027-spring", "new")):
        fitted = run(
            "irt-nb", "fit", f"sqlite:///{db}", "--exam", exam, "--subject", "math",
            "--out", str(folder / f"{name}.json"), "--quiet",
        )  # fmt: skip
        assert fitted.returncode == 0, fitted.stderr
    with sqlite3.connect(db) as con:
        truth = pd.read_sql(
            "SELECT item_id, dif_shift FROM items_truth WHERE subject = 'math'", con
        )
    return folder, db, truth


def test_the_command_line_links_the_sample_cohorts_and_finds_the_planted_dif(sample):
    folder, db, truth = sample
    linked = run(
        "irt-nb", "link", str(folder / "old.json"), str(folder / "new.json"),
        "--method", "stocking-lord", "--out", str(folder / "linked.json"),
    )  # fmt: skip
    assert linked.returncode == 0, linked.stderr
    doc = json.loads((folder / "linked.json").read_text())["metadata"]["linking"]
    A, B = SAMPLE_COHORT["sd"], SAMPLE_COHORT["mean"]
    assert abs(doc["A"] - A) < 2.5 * doc["se_A"] and abs(doc["B"] - B) < 2.5 * doc["se_B"], doc
    assert len(doc["anchors"]) == SAMPLE_COHORT["anchors"]
    linked_model = load_model(folder / "linked.json")
    assert linked_model.group().mean == pytest.approx(
        doc["B"]
    ) and linked_model.group().sd == pytest.approx(doc["A"])
    equating = pd.read_csv(folder / "linked_equating.csv")
    assert (np.diff(equating.old_equivalent) > 0).all()

    out = folder / "dif.csv"
    dif = run(
        "irt-nb", "dif", f"sqlite:///{db}", "--exam", "2026-spring", "--subject", "math",
        "--group", "language", "--focal", "fr", "--out", str(out),
    )  # fmt: skip
    assert dif.returncode == 0, dif.stderr
    table = pd.read_csv(out)
    planted = sorted(truth.item_id[truth.dif_shift > 0])
    assert sorted(table.item_id[table.flagged]) == planted, dif.stdout
    assert set(table.ets_class[table.flagged]) <= {"B-", "C-"}

    fixed = run(
        "irt-nb", "fit", f"sqlite:///{db}", "--exam", "2027-spring", "--subject", "math",
        "--anchors", str(folder / "old.json"), "--out", str(folder / "fixed.json"), "--quiet",
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    cohort = load_model(folder / "fixed.json").group()
    assert abs(cohort.mean - B) < 3 * cohort.se_mean and abs(cohort.sd - A) < 3 * cohort.se_sd, (
        cohort
    )

    concurrent = run(
        "irt-nb", "fit", f"sqlite:///{db}", "--exam", "2026-spring,2027-spring", "--subject", "math",
        "--group", "exam", "--reference", "2026-spring", "--out", str(folder / "both.json"), "--quiet",
    )  # fmt: skip
    assert concurrent.returncode == 0, concurrent.stderr
    later = load_model(folder / "both.json").group("2027-spring")
    assert abs(later.mean - B) < 3 * later.se_mean and abs(later.sd - A) < 3 * later.se_sd, later


def test_a_grouped_fit_frees_named_items_and_scores_each_student_with_the_groups_prior(sample):
    folder, db, truth = sample
    planted = sorted(truth.item_id[truth.dif_shift > 0])
    args = ["--exam", "2026-spring", "--subject", "math", "--group", "language"]
    free = [x for item in planted for x in ("--free", item)]
    model = folder / "grouped.json"
    fitted = run("irt-nb", "fit", f"sqlite:///{db}", *args, *free, "--out", str(model), "--quiet")
    assert fitted.returncode == 0, fitted.stderr
    grouped = load_model(model)
    fr = grouped.group("fr")
    assert sorted(fr.items) == planted and grouped.group().name == "en"
    for item in planted:  # the planted 0.8 shows in the freed difficulties
        j = grouped.item_ids.index(item)
        assert 0.4 < fr.items[item]["difficulty"] - grouped.difficulty[j] < 1.2
    assert abs(fr.mean) < 3 * fr.se_mean  # no impact was planted: DIF no longer looks like one
    out = folder / "grouped_scores.csv"
    scored = run("irt-nb", "score", str(model), f"sqlite:///{db}", *args, "--out", str(out))
    assert scored.returncode == 0, scored.stderr
    table = pd.read_csv(out)
    with sqlite3.connect(db) as con:
        language = dict(con.execute("SELECT student_id, language FROM students_truth").fetchall())
    assert (table.group == table.student_id.map(language)).all()
    wrong = run(
        "irt-nb",
        "score",
        str(model),
        f"sqlite:///{db}",
        "--exam",
        "2026-spring",
        "--subject",
        "math",
        "--group",
        "exam",
    )
    assert (
        wrong.returncode == 2
        and "unknown group '2026-spring'; the model has ['en', 'fr']" in wrong.stderr
    )


def test_group_and_exam_mistakes_are_one_line_errors(sample):
    folder, db, _ = sample
    both_terms = run(
        "irt-nb", "fit", f"sqlite:///{db}", "--exam", "2026-spring,2026-autumn", "--subject", "math",
        "--group", "exam", "--out", str(folder / "x.json"), "--quiet",
    )  # fmt: skip
    assert both_terms.returncode == 2
    assert "column 'exam': 3000 students have more than one group" in both_terms.stderr
    typo = run(
        "irt-nb", "fit", f"sqlite:///{db}", "--exam", "2026-sprng,2027-spring", "--out", str(folder / "x.json"),
    )  # fmt: skip
    assert typo.returncode == 2 and "exam '2026-sprng' matches no row" in typo.stderr
    no_column = run(
        "irt-nb", "dif", f"sqlite:///{db}", "--exam", "2026-spring", "--group", "region"
    )
    assert no_column.returncode == 2 and "region" in no_column.stderr
    itself = run(
        "irt-nb",
        "link",
        str(folder / "old.json"),
        str(folder / "old.json"),
        "--drop",
        "M001",
        "--out",
        str(folder / "y.json"),
    )
    assert itself.returncode == 0  # a model linked to itself: A = 1, B = 0
    assert json.loads((folder / "y.json").read_text())["metadata"]["linking"]["A"] == pytest.approx(
        1, abs=1e-6
    )


def test_the_report_adds_the_dif_and_linking_sections(sample):
    folder, db, truth = sample
    out = folder / "report"
    result = run(
        "irt-nb", "report", "-p", "source", f"sqlite:///{db}", "-p", "exam", "2027-spring",
        "-p", "group", "language", "-p", "old_model", str(folder / "old.json"),
        "--output-dir", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dif"]["flagged"] == sorted(truth.item_id[truth.dif_shift > 0])
    link = metrics["linking"]
    assert abs(link["A"] - SAMPLE_COHORT["sd"]) < 2.5 * link["se_A"], link
    slices = metrics["slices"]  # M6: held-out quality per language, the numbers the gate judges
    assert slices["column"] == "language" and set(slices["groups"]) == {"en", "fr"}
    for name, quality in slices["groups"].items():
        assert quality["n_holdout"] > 1000 and abs(quality["bias"]) < 0.05, (name, quality)
        assert abs(quality["holdout_logloss"] - slices["overall_holdout_logloss"]) < 0.05
    html = (out / "calibration_report.html").read_text()
    assert "Quality by group" in html and "No group is served worse" in html
    assert "Fairness: differential item functioning" in html and "true-score equating" in html
    assert html.count("data:image/png;base64") >= 6


def test_a_focal_group_named_alone_is_compared_with_the_other_even_when_it_is_the_larger():
    rng = np.random.default_rng(21)
    a, b = rng.lognormal(0, 0.3, 8), rng.normal(0, 1, 8)
    x = (rng.random((900, 8)) < probability_correct(rng.standard_normal(900), a, b)).astype(float)
    groups = np.array(["F"] * 600 + ["M"] * 300)  # the focal group is the larger one
    result = dif_analysis(x, groups, focal="F", purify=False)
    assert (result.reference, result.focal) == ("M", "F")
    with pytest.raises(ValueError) as refused:
        dif_analysis(x, groups, focal="X")
    assert "focal group 'X' is not a group other than the reference (['M'])" in str(refused.value)
    assert "np.str_" not in str(refused.value)
