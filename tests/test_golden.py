"""The golden test: the research notebook and the production pipeline give the same item parameters.

This is the proof that the refactoring (research cells -> preparation, processing, calculation modules)
kept the science: both run on the sample database, the notebook in a real kernel with its own pandas
cleaning and hand-written EM, the pipeline through `irt_nb.science.pipeline.calibrate`.
"""

import pandas as pd
import papermill as pm
from conftest import ROOT

from irt_nb.science.pipeline import calibrate
from irt_nb.science.preparation import create_sample_database


def test_research_notebook_and_pipeline_agree_to_1e_6(tmp_path):
    db = create_sample_database(tmp_path / "sample.sqlite", seed=0)
    items_csv = tmp_path / "research_items.csv"
    pm.execute_notebook(
        ROOT / "nbs/research/2pl_calibration.ipynb",
        tmp_path / "research.ipynb",
        parameters={
            "db_path": str(db),
            "exam": "2026-spring",
            "subject": "math",
            "items_csv": str(items_csv),
        },
        kernel_name="irt_nb",
        cwd=str(ROOT / "nbs/research"),
        progress_bar=False,
    )
    research = pd.read_csv(items_csv, index_col="item_id")
    run = calibrate(
        f"sqlite:///{db}",
        exam="2026-spring",
        subject="math",
        tol_param=1e-10,
        standard_errors=False,
        progress=False,
    )
    production = pd.DataFrame(
        {"a": run.model.discrimination, "d": run.model.intercept, "b": run.model.difficulty},
        index=run.model.item_ids,
    )
    assert list(production.index) == list(research.index)
    assert (
        research[["a", "discrimination"]].corr().iloc[0, 1] > 0.9
    )  # the notebook recovers the generating values
    assert research[["b", "difficulty"]].corr().iloc[0, 1] > 0.97
    assert len(production) == 30
    for column in ("a", "d", "b"):
        gap = (production[column] - research[column]).abs().max()
        assert gap < 1e-6, f"{column}: research and pipeline differ by {gap:.2e}"
