#!/usr/bin/env bash
# One notebook through the README's steps, as bench/refactor.py does them. Usage: run_one.sh NAME
# Results: /tmp/realnb/logs/NAME/*.log and one line per step in /tmp/realnb/logs/NAME/summary.tsv
set -u
NAME=$1
ROOT=/tmp/realnb
V=${VENV:-$ROOT/venv}/bin  # bfi: VENV=/tmp/realnb/venv_fa (factor_analyzer 0.5.1 needs scikit-learn<1.8)
export PATH=$V:$PATH OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONWARNINGS=ignore MPLBACKEND=agg
F=$ROOT/nb/$NAME
L=$ROOT/logs/$NAME
rm -rf "$L" "$F/drafts" "$F"/run_*.ipynb "$F"/plain_*.ipynb
mkdir -p "$L"
step() {  # step LABEL CWD COMMAND...
  local label=$1 cwd=$2; shift 2
  local t0=$(date +%s.%N)
  (cd "$cwd" && timeout 900 "$@") >"$L/$label.log" 2>&1
  local rc=$?
  local s=$(python3 -c "print(round($(date +%s.%N)-$t0,1))")
  printf '%s\t%s\t%s\n' "$label" "$rc" "$s" | tee -a "$L/summary.tsv"
  return $rc
}
# 0. the notebook as it is (substitutions only, no tags), plainly with papermill
step plain "$F" papermill -k python3 --log-level ERROR --cwd "$F" untagged.ipynb "$F/plain_untagged.ipynb"
# 0b. the stage suggestions for the untagged notebook
step suggest "$F" irt-nb stages untagged.ipynb --suggest --out "$F/suggested.ipynb"
step stages "$F" irt-nb stages tagged.ipynb
# 1-2. lint
step lint "$F" irt-nb lint-research tagged.ipynb
# 3. refactor
step refactor "$F" irt-nb refactor tagged.ipynb --out "$F/drafts" || exit 0
# 4. every draft, executed by papermill in a real kernel (cwd: the drafts folder, as in bench/refactor.py)
for d in "$F"/drafts/*.ipynb; do
  b=$(basename "$d" .ipynb)
  step "run_$b" "$F" papermill --cwd "$F/drafts" -k python3 --log-level ERROR "$d" "$F/run_$b.ipynb"
done
# 5. the golden test
step golden "$F/drafts" python -m pytest -q -p no:cacheprovider "$F/drafts/test_golden.py"
exit 0
