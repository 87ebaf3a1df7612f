"""The calculation stage as engineers use it: `import irt_nb`, fit, save, load, score."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from irt_nb.science.calculation import fit_irt
from irt_nb.science.item_models import probability_correct
from irt_nb.science.model_file import load_model, save_model
from irt_nb.science.scoring import score_persons

LSAT = (
    ROOT / "data/lsat7"
)  # a copy of shared/data/lsat7: Bock & Lieberman (1970) with mirt reference values


@pytest.fixture(scope="module")
def lsat():
    table = pd.read_csv(LSAT / "lsat7_freq.csv")
    items = ["Q1", "Q2", "Q3", "Q4", "Q5"]
    return pd.DataFrame(
        np.repeat(table[items].to_numpy(float), table["freq"], axis=0), columns=items
    )


def test_2pl_matches_mirts_published_lsat7_estimates(lsat):
    reference = json.loads((LSAT / "reference_2pl.json").read_text())
    model = fit_irt(lsat)
    assert model.item_ids == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    np.testing.assert_allclose(
        model.discrimination, [i["a"] for i in reference["items"]], atol=2e-3
    )
    np.testing.assert_allclose(model.intercept, [i["d"] for i in reference["items"]], atol=2e-3)
    np.testing.assert_allclose(model.difficulty, [i["b"] for i in reference["items"]], atol=2e-3)
    assert model.loglik == pytest.approx(reference["loglik"], abs=1e-3)
    assert model.converged and model.n_parameters == 10
    assert model.bic == pytest.approx(-2 * model.loglik + 10 * np.log(1000))


def test_model_file_round_trip_predicts_the_same_probabilities(lsat, tmp_path):
    model = fit_irt(lsat, model="3pl")
    loaded = load_model(save_model(model, tmp_path / "model.json"))
    theta = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(loaded.probability(theta), model.probability(theta))
    assert json.loads((tmp_path / "model.json").read_text())["model"] == "3pl"


def test_malformed_model_file_says_what_is_wrong(lsat, tmp_path):
    doc = json.loads(save_model(fit_irt(lsat), tmp_path / "m.json").read_text())
    doc["quadrature"].pop("n_points")
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"\$\.quadrature: 'n_points' is a required property"):
        load_model(tmp_path / "m.json")


@pytest.mark.parametrize(
    ("responses", "message"),
    [
        ([[0, 1], [1, 3]], r"1 cells are not: row 1 column 1 = 3\.0"),
        (np.zeros((0, 4)), r"responses is empty"),
        ([[0, np.nan], [1, np.nan]], r"items \(columns\) \[1\] have no responses"),
    ],
)
def test_malformed_responses_raise_value_errors_that_say_where(responses, message):
    with pytest.raises(ValueError, match=message):
        fit_irt(responses)


def test_missing_responses_and_anchor_items_keep_the_scale():
    rng = np.random.default_rng(21)
    a, b = rng.lognormal(0, 0.3, 30), rng.normal(0, 1, 30)
    x = (rng.random((6000, 30)) < probability_correct(rng.standard_normal(6000), a, b)).astype(
        float
    )
    x[rng.random(x.shape) < 0.35] = np.nan
    anchors = {j: (a[j], b[j]) for j in range(5)}
    model = fit_irt(x, fixed=anchors)
    np.testing.assert_array_equal(model.discrimination[:5], a[:5])
    assert np.abs(model.difficulty[5:] - b[5:]).max() < 0.3
    scores = score_persons(model, x, "eap")
    assert np.isfinite(scores.theta).all() and (scores.se > 0).all()


def test_hitting_the_iteration_cap_warns_and_says_not_converged(lsat):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit_irt(lsat, max_iter=2, accelerate=False)
    assert not model.converged and model.n_iterations == 2
    assert any("max_iter=2" in str(w.message) for w in caught)
