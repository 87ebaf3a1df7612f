#!/usr/bin/env bash
# Kept from the #23 check (2026-12-04): the notebooks are fetched with the `fetch` tool (see
# bench/results/real_notebooks.json for repo@commit:path) into /tmp/realnb/orig, not committed (licences).
# Reruns the whole check of irt_nb on real public notebooks. Everything stays under /tmp/realnb.
#   bash /tmp/realnb/run_all.sh            # setup (once), every notebook, the minimal repros
#   SOORGEON=1 bash /tmp/realnb/run_all.sh # also Soorgeon 0.0.20 + ploomber 0.23.3 (optional)
# Results: logs/<name>/summary.tsv (step, exit code, seconds) and logs/<name>/<step>.log; results.tsv at the end.
set -u
ROOT=/tmp/realnb
UV=/work/main/.venv/bin/uv
PY=/work/main/.venv/bin/python
cd $ROOT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# --- setup (skipped when done): irt_nb's wheel built from a copy of /work/main at HEAD, nothing written there
if [ ! -x venv/bin/irt-nb ]; then
  rm -rf src dist && mkdir -p src dist
  git -C /work/main archive HEAD | tar -x -C src && git -C /work/main rev-parse HEAD > src/COMMIT
  $UV build --wheel -o dist src
  grep -vE '^\s*#|^-e|irt[-_]nb' /work/main/requirements.lock > lock.txt
  $UV venv -q -p $PY venv
  # [all] is not enough: `irt-nb refactor` and `stages --suggest` need [dev] (fastcore/nbdev)
  $UV pip install -q --python venv/bin/python "$(ls dist/*.whl)[all,dev]" girth raschpy factor-analyzer \
    seaborn scikit-learn statsmodels bokeh pytest -c lock.txt
fi
if [ ! -x venv_fa/bin/irt-nb ]; then  # factor_analyzer 0.5.1 calls check_array(force_all_finite=...): scikit-learn<1.8
  grep -v '^scikit-learn==' lock.txt > lock_fa.txt
  $UV venv -q -p $PY venv_fa
  $UV pip install -q --python venv_fa/bin/python "$(ls dist/*.whl)[all,dev]" factor-analyzer seaborn statsmodels \
    pytest 'scikit-learn<1.8' -c lock_fa.txt
fi

# --- the notebooks: originals in nb/<name>/original.ipynb (fetched; see report), data beside them
#     titanic: Titanic-Dataset.csv is rebuilt from the repo's edited copy (Titanic-Dataset.repo.csv), see report
python3 prep.py  # untagged.ipynb (substitutions) and tagged.ipynb (stage tags) per notebook
mkdir -p nb/raschpy/my_working_directory nb/heart_enabled/Data nb/heart/Data
for n in iris titanic heart heart_enabled raschpy girth; do echo "##### $n"; ./run_one.sh $n; done
echo "##### bfi"; VENV=$ROOT/venv_fa ./run_one.sh bfi
venv/bin/python compare_suggest.py iris titanic bfi heart heart_enabled raschpy girth

# --- minimal notebooks for the defects
echo "##### repros"; ./repro/run_repros.sh
venv/bin/python diag_iqr.py >/dev/null 2>&1
(cd nb/heart_enabled/drafts && ../../../venv/bin/python /tmp/realnb/diag_iqr2.py 2>&1 | tail -2)

# --- optional peer
if [ "${SOORGEON:-0}" = 1 ]; then
  if [ ! -x peers/bin/soorgeon ]; then
    grep -iE '^(numpy|pandas|scipy|scikit-learn|statsmodels|matplotlib|ipykernel|cloudpickle)==' lock.txt > peers_pins.txt
    $UV venv -q -p $PY peers
    $UV pip install -q --python peers/bin/python soorgeon==0.0.20 ploomber==0.23.3 -r peers_pins.txt seaborn raschpy
  fi
  ./run_soorgeon.sh iris titanic heart_enabled raschpy
fi

# --- one table
for n in iris titanic bfi heart heart_enabled raschpy girth; do
  printf '%s\t' "$n"; awk -F'\t' '{printf "%s=%s(%ss) ", $1, $2, $3}' logs/$n/summary.tsv; echo
done | tee results.tsv
