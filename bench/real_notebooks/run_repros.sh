#!/usr/bin/env bash
# refactor + golden test on each minimal notebook (suggest_open_write: stages --suggest only)
cd /tmp/realnb/repro
export PATH=/tmp/realnb/venv/bin:$PATH OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore
python make_repros.py >/dev/null
for n in method_vs_attr helper_except_as method_mutation alias_mutation cv_timings; do
  rm -rf $n/drafts
  irt-nb refactor $n/nb.ipynb --out $n/drafts >$n/refactor.log 2>&1; r=$?
  (cd $n/drafts && python -m pytest -q -p no:cacheprovider test_golden.py) >$n/golden.log 2>&1; g=$?
  echo "== $n: refactor exit $r, golden exit $g"; grep -E '^E  +\S+ -> ' $n/golden.log | head -4
done
echo "== suggest_open_write"; irt-nb stages suggest_open_write/nb.ipynb --suggest --out suggest_open_write/suggested.ipynb
