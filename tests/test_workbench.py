"""The workbench end to end: stage check, sync check, `irt-nb stages`, clean notebooks, git filter."""

import json
import subprocess

from conftest import BIN, ROOT, add_code_cell, edit_cell, run

CALC = "nbs/science/02_calculation.ipynb"


def test_the_project_itself_passes_the_stage_check():
    result = run("irt-nb", "check-stages")
    assert result.returncode == 0, result.stderr
    assert "0 problems" in result.stdout


def test_a_cell_without_a_stage_fails_the_stage_check_naming_it(project):
    add_code_cell(project / CALC, "#| export\ndef helper():\n    return 1\n")
    result = run("irt-nb", "check-stages", cwd=project)
    assert result.returncode == 1
    assert "nbs/science/02_calculation.ipynb cell" in result.stderr
    assert "(id added01) 'def helper():': exported cell has no stage" in result.stderr


def test_unknown_and_double_stages_fail_the_stage_check(project):
    add_code_cell(project / CALC, "#| export calculations\nx = 1\n", "unknown1")
    add_code_cell(
        project / CALC, "#| export science.calculation\n#| stage processing\ny = 2\n", "double01"
    )
    result = run("irt-nb", "check-stages", cwd=project)
    assert result.returncode == 1
    assert "(id unknown1) 'x = 1': unknown stage or module 'calculations'" in result.stderr
    assert (
        "a stage of the method ['preparation', 'processing', 'calculation'] or a module"
        in result.stderr
    )
    assert (
        "(id double01) 'y = 2': cell names 2 stages ['science.calculation', 'processing']"
        in result.stderr
    )


def test_a_notebook_edited_but_not_exported_fails_the_sync_check_until_exported(project):
    edit_cell(
        project / "nbs/serving/00_response_stores.ipynb",
        "#| export serving.stores\ndef normal_quadrature",
        "#| export serving.stores\ndef normal_quadrature():\n    return 0.5\n",
    )
    result = run("irt-nb", "check-sync", cwd=project)
    assert result.returncode == 1
    assert (
        "irt_nb/serving/stores.py: differs from what the notebooks export; run `nbdev-export`"
        in result.stderr
    )
    assert run("nbdev-export", cwd=project).returncode == 0
    after = run("irt-nb", "check-sync", cwd=project)
    assert after.returncode == 0, after.stderr
    assert "return 0.5" in (project / "irt_nb/serving/stores.py").read_text()


def test_a_hand_edit_of_the_package_fails_the_sync_check(project):
    module = project / "irt_nb/science/processing.py"
    module.write_text(module.read_text() + "\nEXTRA = 1\n")
    result = run("irt-nb", "check-sync", cwd=project)
    assert result.returncode == 1
    assert "irt_nb/science/processing.py: differs" in result.stderr


def test_outputs_in_a_notebook_fail_the_strict_sync_check_and_clean_nb_removes_them(project):
    notebook = project / CALC
    nb = json.loads(notebook.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code.update(
        execution_count=7, outputs=[{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    )
    code["metadata"] = {"tags": ["keep-me"], "collapsed": True}
    notebook.write_text(json.dumps(nb, indent=1))
    result = run("irt-nb", "check-sync", "--strict", cwd=project)
    assert result.returncode == 1
    assert "nbs/science/02_calculation.ipynb: notebook is not clean" in result.stderr
    assert run("irt-nb", "clean-nb", "nbs", cwd=project).returncode == 0
    cleaned = next(c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    assert (cleaned["outputs"], cleaned["execution_count"], cleaned["metadata"]) == (
        [],
        None,
        {"tags": ["keep-me"]},
    )
    assert run("irt-nb", "check-sync", "--strict", cwd=project).returncode == 0


def test_stages_lists_cells_and_handoffs_of_the_research_notebook():
    result = run("irt-nb", "stages", "nbs/research/2pl_calibration.ipynb")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  preparation    1 cells: 5" in lines
    assert "  processing     1 cells: 7" in lines
    assert "  untagged       2 cells: 2, 3" in lines
    assert "  preparation -> processing: df" in lines
    assert "  processing -> calculation: X, X0, observed, wide" in lines
    assert "  preparation -> calculation: truth" in lines


def test_stages_gives_one_line_and_exit_2_for_a_missing_file_or_a_non_notebook(tmp_path):
    missing = run("irt-nb", "stages", str(tmp_path / "nope.ipynb"))
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    assert "no such notebook" in missing.stderr
    (tmp_path / "notes.ipynb").write_text("just text")
    wrong = run("irt-nb", "stages", str(tmp_path / "notes.ipynb"))
    assert (wrong.returncode, wrong.stderr.count("\n")) == (2, 1)
    assert "not a Jupyter notebook" in wrong.stderr


def test_the_git_filter_commits_notebooks_without_outputs_but_with_tags(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        )

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "test")
    git("config", "filter.irt-nb-clean.clean", f"{BIN / 'irt-nb'} clean-nb --stdin")
    git("config", "filter.irt-nb-clean.smudge", "cat")
    (tmp_path / ".gitattributes").write_text((ROOT / ".gitattributes").read_text())
    nb = json.loads((ROOT / "nbs/research/2pl_calibration.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell.update(
                execution_count=1,
                outputs=[{"output_type": "stream", "name": "stdout", "text": ["x\n"]}],
            )
    (tmp_path / "work.ipynb").write_text(json.dumps(nb))
    git("add", ".")
    git("commit", "-qm", "notebook")
    committed = json.loads(git("show", "HEAD:work.ipynb").stdout)
    code = [c for c in committed["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert any(c["metadata"].get("tags") == ["parameters"] for c in code)
    assert json.loads((tmp_path / "work.ipynb").read_text())["cells"][1][
        "outputs"
    ]  # the working copy keeps them


def test_the_notebook_commands_start_without_the_scientific_stack():
    """The git filter runs on every `git add` of a notebook and lint on every save: the parser and these
    commands must not import numpy, pandas or scipy (importing them took 1.8 s of each call)."""
    script = (
        "import sys, contextlib, io\n"
        "from irt_nb.workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(['lint-research', 'nbs/research/2pl_calibration.ipynb']),\n"
        "             main(['stages', 'nbs/research/2pl_calibration.ipynb']), main(['check-stages'])]\n"
        "print(codes, sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'pandas', 'scipy'}))\n"
    )
    result = run("python", "-c", script)
    assert result.stdout.strip() == "[1, 0, 0] []", result.stdout + result.stderr
