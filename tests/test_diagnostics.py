"""`irt-nb diagnose` as a psychometrician would run it: on LSAT7 against the values R mirt's own tests
assert, and the two properties that only show over many samples: M2 keeps its χ² distribution when answers
are missing, and Snijders' lz* is standard normal where lz is not."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import lsat7_wide, run
from scipy.special import expit

from irt_nb.science import diagnostics
from irt_nb.science.calculation import fit_irt
from irt_nb.science.diagnostics import model_fit, person_fit
from irt_nb.serving.stores import MISSING

# R mirt 1.x, tests/testthat/test-01-mirtOne.R ('dich'): 2PL on expand.table(LSAT7)
MIRT_M2 = 11.93841
MIRT_S_X2 = [4.749440, 14.451071, 1.270381, 5.237400, 0.941125]
MIRT_ZH = [1.431838, 6.354917, 5.310844, 5.804449, 0.696139]
# residuals(type = "LD"): |LD-X2| below the diagonal, signed Cramér's V above it (pairs in row order)
MIRT_LD_X2 = [0.451213, 0.8562096, 2.577395, 2.392183, 1.053826, 0.2662122, 1.383089, 0.1542321, 0.002940504, 9.962506e-06]  # fmt: skip
MIRT_LD_SIGN = [-1, -1, 1, 1, 1, -1, -1, -1, -1, 1]
MIRT_MAP_FIRST_PATTERN = -1.8165552  # fscores(method = "MAP") of the all-wrong pattern


@pytest.fixture(scope="module")
def lsat(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lsat")
    lsat7_wide(folder / "lsat7.csv")
    fitted = run(
        "irt-nb", "fit", "lsat7.csv", "--wide", "--out", "lsat7.json", "--quiet", cwd=folder
    )
    assert fitted.returncode == 0, fitted.stderr
    return folder


def test_diagnose_on_lsat7_reproduces_r_mirt(lsat):
    done = run("irt-nb", "diagnose", "lsat7.json", "lsat7.csv", "--wide", "--out", "fit", cwd=lsat)
    assert done.returncode == 0, done.stderr
    summary = json.loads((lsat / "fit/model_fit.json").read_text())
    assert summary["df"] == 5 and summary["n_margins"] == 15
    assert summary["m2"] == pytest.approx(MIRT_M2, rel=1e-4)
    assert summary["rmsea"] == pytest.approx(np.sqrt((MIRT_M2 - 5) / (1000 * 5)), rel=1e-3)
    assert summary["rmsea_low"] < summary["rmsea"] < summary["rmsea_high"]
    assert 0.9 < summary["tli"] < summary["cfi"] < 1
    items = pd.read_csv(lsat / "fit/item_fit.csv")
    np.testing.assert_allclose(items.S_X2, MIRT_S_X2, rtol=3e-3)
    np.testing.assert_allclose(items.Zh, MIRT_ZH, rtol=3e-3)
    assert items.df.tolist() == [2] * 5
    assert items.item_id[items.p_holm < 0.05].tolist() == ["Q2"]  # the one item to review
    assert "Review item Q2" in done.stdout
    pairs = pd.read_csv(lsat / "fit/local_dependence.csv")
    np.testing.assert_allclose(pairs.LD_X2.abs(), MIRT_LD_X2, rtol=1e-2, atol=1e-4)
    big = pairs.LD_X2.abs() > 0.01  # the sign of a zero is noise
    assert (np.sign(pairs.LD_X2)[big] == np.array(MIRT_LD_SIGN)[big]).all()
    persons = pd.read_csv(lsat / "fit/person_fit.csv")
    assert persons.student_id[0] == "s0000" and len(persons) == 1000
    assert persons.theta[0] == pytest.approx(MIRT_MAP_FIRST_PATTERN, abs=2e-3)


def test_diagnose_names_what_it_cannot_use(lsat):
    wide = pd.read_csv(lsat / "lsat7.csv").assign(Q9=1)
    wide.to_csv(lsat / "extra.csv", index=False)
    done = run("irt-nb", "diagnose", "lsat7.json", "extra.csv", "--wide", "--out", "x", cwd=lsat)
    assert done.returncode == 2
    assert "not in the model: ['Q9']" in done.stderr and "Traceback" not in done.stderr
    assert not (lsat / "x").exists()


def _two_pl(rng, n_persons, a, b, missing=0.0):
    theta = rng.standard_normal(n_persons)
    codes = (rng.random((n_persons, len(a))) < expit(a * (theta[:, None] - b))).astype(np.int8)
    codes[rng.random(codes.shape) < missing] = MISSING
    return codes


def _as_if_complete(codes):
    counts = diagnostics._observed_margins(codes)[1]
    return lambda answered, keep: np.outer(counts[keep], counts[keep]) / len(codes)


def test_m2_keeps_its_chi_square_distribution_with_missing_answers(monkeypatch):
    """30 samples of 1,500 students on 6 items, a quarter of the answers missing at random. Under the
    true model M2 averages its df (9). The complete-data covariance Σ = Ξ/N, as if every margin were a
    mean over all students, averages 33 and rejects 90% of these samples: the pair counts are what
    keep M2 calibrated."""
    rng = np.random.default_rng(11)
    a, b = np.array([0.8, 1.0, 1.2, 1.5, 1.8, 2.0]), np.array([-1.0, -0.5, 0.0, 0.3, 0.8, 1.2])
    m2, df, p, complete_data = [], set(), [], []
    for _ in range(30):
        codes = _two_pl(rng, 1500, a, b, missing=0.25)
        model = fit_irt(np.where(codes == MISSING, np.nan, codes))
        found = model_fit(model, codes)
        m2.append(found.m2), p.append(found.p), df.add(found.df)
        assert 0.23 < found.share_missing < 0.27
        with monkeypatch.context() as patch:  # n_uv = n_u n_v / N: Σ = Ξ / N
            patch.setattr(diagnostics, "_pair_counts", _as_if_complete(codes))
            complete_data.append(model_fit(model, codes).m2)
    assert df == {9}
    mean = np.mean(m2)
    assert abs(mean - 9) < 3 * np.sqrt(2 * 9 / 30), mean  # within 3 SE of its df
    assert np.mean(np.array(p) < 0.05) <= 0.2
    assert np.mean(complete_data) > 2 * mean
    # and M2 has power: a 1PL on the same kind of data is rejected
    codes = _two_pl(rng, 1500, a, b, missing=0.25)
    wrong = model_fit(fit_irt(np.where(codes == MISSING, np.nan, codes), model="1pl"), codes)
    assert wrong.p < 1e-4 and wrong.rmsea > 0.03


def test_lz_star_is_standard_normal_where_lz_is_not():
    """Snijders' correction, on 4,000 students × 30 items of a known 2PL, with 10% of the answers
    missing: lz* has SD 1 (to 0.05) and a mean within 0.1 of 0 (its correction is first-order: 0.09 at 30
    items, 0.05 at 60), where lz at the estimated θ is too narrow (SD 0.87) and off-centre (mean 0.25)."""
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.7, 2.0, 30), rng.normal(0, 1, 30)
    codes = _two_pl(rng, 4000, a, b, missing=0.1)
    model = fit_irt(np.where(codes == MISSING, np.nan, codes))
    found = person_fit(model, codes)
    assert abs(found.lz_star.mean()) < 0.1 and abs(found.lz_star.std() - 1) < 0.05
    assert found.lz.std() < 0.9 and found.lz.mean() > 2 * abs(found.lz_star.mean())
    assert 0.03 < found.flagged.mean() < 0.08  # about 5% by chance
    # a student who answers at random is flagged
    careless = codes[:200].copy()
    careless[:, :] = rng.integers(0, 2, careless.shape)
    assert person_fit(model, careless).flagged.mean() > 0.3


def test_s_x2_is_the_same_whether_students_share_a_table_or_get_their_own(monkeypatch):
    "With answers missing at random most students answer a set of their own items: both paths agree."
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.7, 2.0, 12), rng.normal(0, 1, 12)
    codes = _two_pl(rng, 3000, a, b, missing=0.15)
    codes[:1500, :3] = MISSING  # and half of them share one form, so both paths run
    model = fit_irt(np.where(codes == MISSING, np.nan, codes))
    mixed = diagnostics.s_x2(model, codes)
    monkeypatch.setattr(diagnostics, "_SHARED", 1)  # every answered set gets its table
    tables = diagnostics.s_x2(model, codes)
    np.testing.assert_allclose(mixed.S_X2, tables.S_X2, rtol=1e-10)
    assert (mixed.df == tables.df).all() and (mixed.df > 0).all()


def test_two_linked_forms_leave_out_the_pairs_nobody_answered_together():
    "Form A has items 0-11, form B items 8-19: pairs across the forms have no margin, and M2 fits."
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.7, 2, 20), rng.normal(0, 1, 20)
    codes = _two_pl(rng, 4000, a, b)
    codes[:2000, 12:] = MISSING
    codes[2000:, :8] = MISSING
    model = fit_irt(np.where(codes == MISSING, np.nan, codes))
    found = model_fit(model, codes)
    assert found.n_margins == 20 + 2 * 66 - 6  # items, each form's pairs, the common pairs once
    assert found.df == found.n_margins - 40 and found.p > 0.01
