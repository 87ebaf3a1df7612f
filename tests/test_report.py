"""The papermill calibration report, run through `irt-nb report` with a real kernel."""

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import run

from irt_nb.science.model_file import load_model
from irt_nb.science.pipeline import calibrate
from irt_nb.science.preparation import create_sample_database

PARAMETERS = {
    "exam": "2026-autumn",
    "subject": "reading",
    "n_quadrature": 31,
    "min_item_responses": 10,
    "min_person_responses": 3,
}


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    return create_sample_database(
        tmp_path_factory.mktemp("report") / "sample.sqlite", seed=5, n_students=700
    )


def report(tmp_path, *options):
    return run("irt-nb", "report", "--quiet", "--output-dir", str(tmp_path / "out"), *options)


def options(values):
    return [arg for name, value in values.items() for arg in ("-p", name, str(value))]


def test_report_numbers_match_the_package_and_the_html_holds_the_figures(sample_db, tmp_path):
    values = {"source": f"sqlite:///{sample_db}", **PARAMETERS}
    result = report(tmp_path, *options(values))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    direct = calibrate(
        values["source"],
        exam="2026-autumn",
        subject="reading",
        n_quadrature=31,
        min_item_responses=10,
        min_person_responses=3,
        progress=False,
    )
    # The same fit in two processes: equal to the convergence tolerance (the float32 phase of the EM
    # may round differently under another BLAS thread layout; the float64 finish then differs ~1e-7).
    assert metrics["loglik"] == pytest.approx(direct.model.loglik, abs=1e-6)
    assert metrics["data_fingerprint"] == direct.model.data_fingerprint
    assert metrics["n_persons"] == direct.model.n_persons and metrics["n_items"] == len(
        direct.model.item_ids
    )
    np.testing.assert_allclose(
        [i["discrimination"] for i in metrics["items"]], direct.model.discrimination, atol=1e-5
    )
    np.testing.assert_allclose(
        [i["difficulty"] for i in metrics["items"]], direct.model.difficulty, atol=1e-5
    )
    assert metrics["parameters"]["n_quadrature"] == 31 and metrics["package_version"]
    assert (
        0.5 < metrics["marginal_reliability"] < 1
        and metrics["lr_test_1pl_vs_2pl"]["df"] == len(direct.model.item_ids) - 1
    )
    assert (
        sum(step["dropped"] for step in metrics["processing_report"])
        == direct.matrix.report.dropped.sum()
    )
    assert (
        json.loads((out / "model.json").read_text())["data_fingerprint"]
        == direct.model.data_fingerprint
    )
    html = (out / "calibration_report.html").read_text()
    assert html.count("data:image/png;base64") >= 4  # ICCs, information, abilities, fit
    assert "from irt_nb.science.pipeline import calibrate" not in html  # code cells hidden
    assert "Likelihood-ratio test 1PL vs 2PL" in html
    # the sample's slopes differ (lognormal, sd 0.3): the 2PL must win; the next test is the other way
    comparison = metrics["lr_test_1pl_vs_2pl"]
    assert comparison["preferred"] == "2pl" and comparison["bic_2pl"] < comparison["bic_1pl"]
    assert "The 2PL is preferred" in html
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html  # no warning blocks
    # Fit and reliability: the report's numbers are the library's on the same answers
    from irt_nb.science.diagnostics import model_fit
    from irt_nb.science.score_tables import score_table

    fit = model_fit(direct.model, direct.matrix.dense_codes)
    assert metrics["fit"]["model"]["m2"] == pytest.approx(fit.m2, rel=1e-4)
    assert metrics["fit"]["model"]["df"] == fit.df and fit.share_missing > 0
    assert len(metrics["fit"]["items"]) == len(direct.model.item_ids)
    assert abs(metrics["fit"]["lz_star_sd"] - 1) < 0.2 and metrics["fit"]["advice"]
    reliability = score_table(direct.model).reliability
    assert metrics["score_table"]["reliability"] == pytest.approx(reliability, rel=1e-4)
    assert "Fit and reliability" in html and "Score table" in html
    served = json.loads((out / "model.json").read_text())  # the same model file as `irt-nb fit`
    assert served["format"] == "irt_nb.model/2"
    assert load_model(out / "model.json").abilities.ids() == direct.model.abilities.ids()


def test_the_report_prefers_the_1pl_when_the_items_share_one_slope(tmp_path):
    rng = np.random.default_rng(3)
    theta, difficulty = rng.standard_normal((700, 1)), np.linspace(-1.5, 1.5, 20)
    right = rng.random((700, 20)) < 1 / (1 + np.exp(-1.2 * (theta - difficulty)))
    answers = pd.DataFrame(
        {
            "student_id": np.repeat([f"s{i}" for i in range(700)], 20),
            "item_id": np.tile([f"q{j:02d}" for j in range(20)], 700),
            "correct": right.ravel().astype(int),
        }
    )
    answers.to_csv(tmp_path / "one_slope.csv", index=False)
    values = {"source": tmp_path / "one_slope.csv", "exam": "", "subject": "", "n_quadrature": 31}
    result = report(tmp_path, *options(values))
    assert result.returncode == 0, result.stderr
    comparison = json.loads((tmp_path / "out" / "metrics.json").read_text())["lr_test_1pl_vs_2pl"]
    assert comparison["preferred"] == "1pl" and comparison["bic_1pl"] < comparison["bic_2pl"]
    assert "The 1PL is preferred" in (tmp_path / "out" / "calibration_report.html").read_text()


def test_same_data_and_parameters_from_yaml_give_the_same_numbers(sample_db, tmp_path):
    first = report(tmp_path / "a", *options({"source": f"sqlite:///{sample_db}", **PARAMETERS}))
    config = tmp_path / "report.yaml"
    config.write_text(
        "\n".join(
            f"{k}: {json.dumps(v)}"
            for k, v in {"source": f"sqlite:///{sample_db}", **PARAMETERS}.items()
        )
    )
    second = report(tmp_path / "b", "--config", str(config))
    assert first.returncode == second.returncode == 0, second.stderr
    a, b = (json.loads((tmp_path / d / "out/metrics.json").read_text()) for d in ("a", "b"))
    for key in (
        "loglik",
        "aic",
        "bic",
        "items",
        "marginal_reliability",
        "data_fingerprint",
        "parameters",
    ):
        assert a[key] == b[key], key


def test_unknown_parameters_and_bad_values_are_refused_before_the_kernel_starts(tmp_path):
    result = report(tmp_path, "-p", "quadrature", "31", "-p", "model", "4pl")
    assert result.returncode == 2
    assert "unknown parameter 'quadrature'" in result.stderr
    assert "parameter 'model' must be one of ['1pl', '2pl', '3pl'], got '4pl'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_run_keeps_the_executed_notebook_and_names_the_cell(tmp_path):
    result = report(tmp_path, "-p", "source", str(tmp_path / "missing.csv"))
    assert result.returncode == 1
    assert (
        "the report failed in cell" in result.stderr
        and "missing.csv: no such file" in result.stderr
    )
    executed = nbformat.read(tmp_path / "out/calibration_report.ipynb", as_version=4)
    errors = [
        o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert errors and errors[0]["evalue"].endswith("missing.csv: no such file")


def test_a_report_never_mixes_its_outputs_with_a_previous_run(sample_db, tmp_path):
    values = {"source": f"sqlite:///{sample_db}", **PARAMETERS}
    first = report(tmp_path, *options(values))
    assert first.returncode == 0, first.stderr
    again = report(tmp_path, *options(values))
    assert (
        again.returncode == 2 and "is not empty" in again.stderr and "--overwrite" in again.stderr
    )
    stale = tmp_path / "out" / "calibration_report.html"
    failing = report(tmp_path, *options({**values, "exam": "1999"}), "--overwrite")
    assert failing.returncode == 1 and "matches no row" in failing.stderr
    assert not stale.exists()  # the previous run's HTML is gone, not left beside the failed run
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["calibration_report.ipynb"]


def test_report_registry_registers_the_reports_own_model_file(sample_db, tmp_path):
    from irt_nb.serving.registry import Registry, version_id

    values = {"source": f"sqlite:///{sample_db}", **PARAMETERS}
    registry = tmp_path / "registry"
    result = report(tmp_path, *options(values), "--registry", str(registry), "--reason", "spring")
    assert result.returncode == 0, result.stderr
    reported = json.loads((tmp_path / "out" / "model.json").read_text())
    vid = result.stdout.split("registered version ")[1].split()[0]
    assert vid == version_id(reported)  # the file the report made, byte for byte in content
    registered = json.loads(Registry(registry)._get("versions", vid, "model.json"))
    assert registered == reported
