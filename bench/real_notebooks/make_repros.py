"""Minimal notebooks for the irt_nb defects seen on the real notebooks. Each: refactor, then the golden test.
    /tmp/realnb/venv/bin/python /tmp/realnb/repro/make_repros.py   (writes /tmp/realnb/repro/<name>/nb.ipynb)"""

import json
from pathlib import Path

HERE = Path(__file__).parent


def notebook(*sources):
    cells = [
        {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": s}
        for i, s in enumerate(sources)
    ]
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


REPROS = {
    # 1. golden._code_signature: a helper handed between stages that calls `np.f(...)`, numpy imported in another
    #    cell: the kernel compiles LOAD_METHOD, drafted.py (import in the same file) LOAD_ATTR -> "is not the notebook's"
    "method_vs_attr": notebook(
        "import numpy as np",
        "#| stage preparation\nvalues = np.arange(4.0)",
        "#| stage processing\ndef halve(v):\n    assert np.ndim(v) == 1\n    return v / 2\n\nhalves = halve(values)",
        "#| stage calculation\ntotal = float(halve(halves).sum())",
    ),
    # 1'. the same helper with `except TypeError as err:` (the heart study's iqr_outliers): refactoring.free_names
    #     counts `err` as a read of notebook data, so the helper stays nested and becomes a hand-off; the golden test
    #     then compares it by code and fails on LOAD_METHOD vs LOAD_ATTR (defect 1)
    "helper_except_as": notebook(
        "import numpy as np",
        "#| stage preparation\nvalues = np.arange(4.0)",
        "#| stage processing\ndef halve(v):\n    assert np.ndim(v) == 1\n    try:\n        return v / 2\n"
        "    except TypeError as err:\n        print(err)\n\nhalves = halve(values)",
        "#| stage calculation\ntotal = float(halve(halves).sum())",
    ),
    # 2a. a later block changes a value by a method call: the drafted pipeline keeps the earlier block's hand-off
    #     by reference, so the golden test sees the later state (RaschPy: slm = rp.SLM(sim); slm.calibrate())
    "method_mutation": notebook(
        "#| stage preparation\nitems = [3, 1, 2]",
        "#| stage processing\nitems.sort()\nfirst = items[0]",
    ),
    # 2b. the same through an alias: dicts put in a list, changed in a loop (heart study: models = [model_full, ...])
    "alias_mutation": notebook(
        "#| stage preparation\nmodel_a = {'name': 'a'}\nmodel_b = {'name': 'b'}",
        "#| stage calculation\nmodels = [model_a, model_b]\nfor model in models:\n    model['score'] = len(model['name'])",
    ),
    # 3. timings inside a result: scikit-learn's cross_validate returns fit_time and score_time
    "cv_timings": notebook(
        "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import cross_validate",
        "#| stage preparation\nX, y = load_iris(return_X_y=True)",
        "#| stage calculation\nscores = cross_validate(LogisticRegression(max_iter=1000), X, y, cv=3)",
    ),
    # 4. stages --suggest: a cell that writes a file with open(..., 'w') is suggested as preparation ("reads data")
    "suggest_open_write": notebook(
        "import numpy as np",
        "values = np.arange(4.0)",
        "total = float(values.sum())\nwith open('total.txt', 'w') as f:\n    f.write(str(total))",
    ),
}

for name, nb in REPROS.items():
    folder = HERE / name
    folder.mkdir(exist_ok=True)
    (folder / "nb.ipynb").write_text(json.dumps(nb, indent=1) + "\n")
    print(folder / "nb.ipynb")
