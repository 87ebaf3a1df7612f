"""The README's test command, run several times from fresh clones, alone or beside a busy core.

    python bench/suite_under_load.py --runs 5 --busy      # 5 runs, one core kept busy by a spin loop
    python bench/suite_under_load.py --runs 1             # one quiet run

Each run clones the committed main branch into a temporary folder and runs `CI=true make test` there
(set-up included), with pytest's 25 slowest tests listed. The spin loop is a separate process that
stops by itself after `--limit` seconds and is killed when the run ends. Results, run by run (wall
time, exit code, pytest's own time, the slowest tests), go to bench/results/suite_runs.json.
Not part of `make bench`: five runs take about an hour.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end: pass"


def one_run(index: int, *, busy: bool, limit: float) -> dict:
    "Clone main, run `make test` (beside a spin loop if `busy`), and return what it showed."
    folder = Path(tempfile.mkdtemp(prefix=f"suite-run{index}-"))
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder / "clone")], check=True)
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(limit=limit)]) if busy else None
    env = {**os.environ, "CI": "true", "PYTEST_ADDOPTS": "--durations=25"}
    start = time.monotonic()
    try:
        done = subprocess.run(
            ["make", "test"], cwd=folder / "clone", env=env, capture_output=True, text=True
        )
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    wall = time.monotonic() - start
    log = done.stdout + done.stderr
    (folder / "make_test.log").write_text(log)
    summary = re.findall(r"=+ (.*(?:passed|failed|error).*) in ([\d.]+)s", log)
    slowest = re.findall(r"^([\d.]+)s (call|setup|teardown) +(\S+)$", log, flags=re.M)
    return {
        "run": index,
        "busy_core": busy,
        "exit_code": done.returncode,
        "wall_s": round(wall, 1),
        "pytest": summary[-1][0] if summary else None,
        "pytest_s": float(summary[-1][1]) if summary else None,
        "slowest": [{"s": float(s), "phase": p, "test": t} for s, p, t in slowest],
        "log": str(folder / "make_test.log"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="keep one core busy beside each run")
    parser.add_argument(
        "--limit", type=float, default=3600, help="the spin loop's own time limit, s"
    )
    parser.add_argument("--out", default=str(ROOT / "bench/results/suite_runs.json"))
    args = parser.parse_args()
    results = []
    for index in range(1, args.runs + 1):
        results.append(one_run(index, busy=args.busy, limit=args.limit))
        last = results[-1]
        print(
            f"run {index}: exit {last['exit_code']}, {last['wall_s']:.0f} s, {last['pytest']}",
            flush=True,
        )
        Path(args.out).write_text(
            json.dumps({"cores": len(os.sched_getaffinity(0)), "runs": results}, indent=1)
        )
    walls = sorted(r["wall_s"] for r in results)
    print(
        f"passed {sum(r['exit_code'] == 0 for r in results)}/{len(results)}; median {walls[len(walls) // 2]:.0f} s"
    )


if __name__ == "__main__":
    main()
