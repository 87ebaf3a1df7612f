"""The research notebook runs top to bottom in a real kernel and recovers the generating parameters."""

import re

import nbformat
import papermill as pm
from conftest import ROOT


def test_research_notebook_recovers_the_simulated_items(tmp_path):
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        ROOT / "nbs/research/2pl_calibration.ipynb",
        out,
        parameters={"n_persons": 3000, "n_items": 10, "seed": 7},
        kernel_name="irt_nb",
        cwd=str(ROOT / "nbs/research"),
        progress_bar=False,
    )
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
    )
    em = re.search(r"EM stopped after (\d+) iterations, log-likelihood (-[\d.]+)", text)
    assert em and int(em[1]) < 500, text  # converged before the cap
    corr = re.search(r"correlation with truth: a ([\d.]+) b ([\d.]+)", text)
    assert float(corr[1]) > 0.85 and float(corr[2]) > 0.97, corr[0]
