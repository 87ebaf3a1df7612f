"""Benchmark: irt_nb's 2PL fit beside PyPI mirt 1.2.0 (Rust core) and girth 0.8.0, in one run.

Same simulated data for every engine; wall time is the median of `--repeats` fits after one warm-up;
quality is the marginal log-likelihood of each engine's estimates under one common 101-point
quadrature (higher is better), so fewer quadrature points cannot look better than they are.
Peak memory of a 1,000,000 x 100 fit with 20% missing is measured in a child process.
Writes bench/results/calculation.json and prints a table.  Usage: make bench
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from irt_nb.calculation import (
    expected_counts,
    fit_irt,
    normal_quadrature,
    probability_correct,
    response_codes,
)

OUT = Path(__file__).parent / "results" / "calculation.json"


def simulate(n_persons, n_items, missing, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1, n_items)
    x = (
        rng.random((n_persons, n_items)) < probability_correct(rng.standard_normal(n_persons), a, b)
    ).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    return x, a, b


def common_loglik(x, a, b):
    "Marginal log-likelihood of (a, b) with 101 Gauss-Hermite points."
    nodes, weights = normal_quadrature(101)
    codes = response_codes(x)
    return float(
        expected_counts(codes, nodes, np.log(weights), np.column_stack([a, -a * b]), [slice(None)])[
            2
        ]
    )


def run_irt_nb(x):
    m = fit_irt(x, standard_errors=False, progress=False)
    return m.discrimination, m.difficulty


def run_mirt(x, points):
    import mirt

    r = mirt.fit_mirt(
        np.where(np.isnan(x), -1, x).astype(np.int64),
        model="2PL",
        n_factors=1,
        estimation="EM",
        n_quadpts=points,
        compute_standard_errors=False,
    )
    p = r.model.parameters
    return np.asarray(p["discrimination"], float).ravel(), np.asarray(
        p["difficulty"], float
    ).ravel()


def run_girth(x):
    from girth import twopl_mml
    from girth.utilities.utils import INVALID_RESPONSE

    r = twopl_mml(
        np.ascontiguousarray(np.where(np.isnan(x), INVALID_RESPONSE, x).astype(np.int64).T)
    )
    return np.asarray(r["Discrimination"], float), np.asarray(r["Difficulty"], float)


ENGINES = {
    "irt_nb (61 pts, SQUAREM)": run_irt_nb,
    "mirt 1.2.0 (21 pts, default)": lambda x: run_mirt(x, 21),
    "mirt 1.2.0 (61 pts)": lambda x: run_mirt(x, 61),
    "girth 0.8.0 (41 pts)": run_girth,
}


def time_engine(fn, x, repeats):
    start = time.perf_counter()
    estimates = fn(x)  # warm-up, also timed: first call
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return estimates, first, statistics.median(times) if times else first


def peak_memory_child(n_persons):
    "Fit n_persons x 100 with 20% missing in a fresh process; return (seconds, peak RSS GiB)."
    code = (
        "import time,resource,numpy as np,sys;sys.path.insert(0,'bench');from calculation import simulate;"
        f"from irt_nb.calculation import fit_irt;x,_,_=simulate({n_persons},100,0.2);del _;t=time.perf_counter();"
        "m=fit_irt(x,standard_errors=False,progress=False);"
        "print(time.perf_counter()-t,resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20,m.converged)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, check=True
    )
    seconds, gib, converged = out.stdout.split()
    return float(seconds), float(gib), converged == "True"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    cases = (
        [(10_000, 50, 0.0), (100_000, 100, 0.0), (100_000, 100, 0.2)]
        if not args.quick
        else [(10_000, 50, 0.0)]
    )
    results = []
    for n, j, missing in cases:
        x, a, b = simulate(n, j, missing)
        truth = common_loglik(x, a, b)
        for name, fn in ENGINES.items():
            if name.startswith("girth") and n > 10_000:
                continue  # about 8 minutes per fit at 100k x 100: past this benchmark's time bound
            repeats = args.repeats if n <= 10_000 else 1
            est, first, median = time_engine(fn, x, repeats)
            row = {
                "case": f"{n}x{j}, {missing:.0%} missing",
                "engine": name,
                "first_s": round(first, 3),
                "median_s": round(median, 3),
                "loglik_common": round(common_loglik(x, *est), 3),
                "loglik_truth": round(truth, 3),
                "max_abs_diff_a_vs_irt_nb": None,
            }
            results.append(row)
            print(
                f"{row['case']:<24} {name:<30} first {first:7.2f}s  median {median:7.2f}s  loglik {row['loglik_common']:.3f}",
                flush=True,
            )
    base = {r["case"]: r for r in results if r["engine"].startswith("irt_nb")}
    for r in results:
        r["time_ratio_to_irt_nb"] = round(r["median_s"] / base[r["case"]]["median_s"], 2)
        r["loglik_minus_irt_nb"] = round(r["loglik_common"] - base[r["case"]]["loglik_common"], 3)
    memory = None
    if not args.quick:
        seconds, gib, converged = peak_memory_child(1_000_000)
        memory = {
            "case": "1000000x100, 20% missing",
            "seconds": round(seconds, 1),
            "peak_rss_gib": round(gib, 2),
            "converged": converged,
        }
        print(
            f"1,000,000 x 100, 20% missing: {seconds:.1f}s, peak RSS {gib:.2f} GiB (incl. the 0.8 GB input)"
        )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": {"cores": len(__import__("os").sched_getaffinity(0))},
                "fits": results,
                "memory": memory,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=1,
        )
    )
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
