"""Benchmark: irt_nb's 2PL fit beside PyPI mirt 1.2.0 (Rust core) and girth 0.8.0, in one run.

Same simulated data for every engine. Wall time is the median of `--repeats` calls after a first
(cold) call, which is reported too: mirt's "warm" time is its median after the first call.
Standard errors: irt_nb and mirt compute them at their defaults and are timed with them; girth
computes none. Quality is each engine's marginal log-likelihood under one common quadrature (61 and
101 Gauss-Hermite points, all nodes), against the maximum-likelihood estimate (a tight float64 fit
with every node), so fewer quadrature points cannot look better than they are.

Each speed lever of irt_nb is also measured on its own at 100,000 x 100: the E-step with all 61
nodes vs the weightless ones skipped, float64 vs float32 products, the standard-error pass, and the
fit with each lever switched off (the Newton finish included). Peak memory of a 1,000,000 x 100 fit with 20% missing (standard
errors included) is measured in a child process.

Writes bench/results/calculation.json and prints tables.  Usage: make bench (or python bench/calculation.py)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from irt_nb.science.calculation import EMProblem, EMSettings, fit_irt
from irt_nb.science.item_models import item_model, probability_correct
from irt_nb.serving.stores import LocalResponses, NodeTables, normal_quadrature, response_codes

OUT = Path(__file__).parent / "results" / "calculation.json"
TWO_PL = item_model("2pl")


def simulate(n_persons, n_items, missing, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1, n_items)
    x = (
        rng.random((n_persons, n_items)) < probability_correct(rng.standard_normal(n_persons), a, b)
    ).astype(float)
    x[rng.random(x.shape) < missing] = np.nan
    return x, a, b


def common_loglik(store, a, b, points):
    "Marginal log-likelihood of (a, b) with `points` Gauss-Hermite nodes, none skipped."
    nodes, weights = normal_quadrature(points, min_weight=0)
    rows = TWO_PL.rows_from(a, -a * b)
    return store.expected_counts(NodeTables.of(TWO_PL, nodes, np.log(weights), rows))[2]


def run_irt_nb(x, **options):
    m = fit_irt(x, progress=False, **options)
    return m.discrimination, m.difficulty


def run_mirt(x, points):
    import mirt

    r = mirt.fit_mirt(
        np.where(np.isnan(x), -1, x).astype(np.int64), model="2PL", n_quadpts=points
    )  # defaults otherwise: EM, standard errors computed
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


ENGINES = {  # name: (function, computes standard errors)
    "irt_nb (61 pts, SEs)": (run_irt_nb, True),
    "mirt 1.2.0 (21 pts, default, SEs)": (lambda x: run_mirt(x, 21), True),
    "mirt 1.2.0 (61 pts, SEs)": (lambda x: run_mirt(x, 61), True),
    "girth 0.8.0 (41 pts, no SEs)": (run_girth, False),
}


def timed(fn, *args, repeats=3):
    "(result, first call seconds, median of the next `repeats` calls)."
    start = time.perf_counter()
    result = fn(*args)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return result, first, statistics.median(times) if times else first


def run_fit(x, options):
    return fit_irt(x, progress=False, **options)


def levers(x, repeats):
    "Each speed lever on its own at this size: E-step variants, SE pass, fits with one lever off."
    codes = response_codes(x)
    store = LocalResponses(codes, 61)
    start = fit_irt(x, standard_errors=False, progress=False)
    rows = TWO_PL.rows_from(start.discrimination, start.intercept)
    estep = {}
    for label, min_weight, precision in (
        ("61 nodes, float64", 0, "float64"),
        ("35 nodes, float64", 1e-12, "float64"),
        ("35 nodes, float32", 1e-12, "float32"),
    ):
        nodes, weights = normal_quadrature(61, min_weight)
        tables = NodeTables.of(TWO_PL, nodes, np.log(weights), rows)
        _, _, estep[label] = timed(store.expected_counts, tables, precision, repeats=repeats + 2)
    problem = EMProblem.build(store, TWO_PL, None, EMSettings())
    tables = problem.tables(rows, derivatives=True)
    _, _, se_pass = timed(store.information_terms, tables, repeats=repeats)
    fits = {}
    for label, options in (
        ("all levers", {}),
        ("every node (no skipping)", {"min_node_weight": 0}),
        ("float64 throughout", {"float32_start": False}),
        ("no Newton finish", {"newton_finish": False}),
        ("no standard errors", {"standard_errors": False}),
        (
            "none (every node, float64, no Newton)",
            {"min_node_weight": 0, "float32_start": False, "newton_finish": False},
        ),
    ):
        model, _, seconds = timed(run_fit, x, options, repeats=repeats)
        fits[label] = {
            "seconds": round(seconds, 3),
            "iterations": model.n_iterations,
            "loglik_61_all_nodes": round(
                common_loglik(store, model.discrimination, model.difficulty, 61), 4
            ),
            "loglik_101": round(
                common_loglik(store, model.discrimination, model.difficulty, 101), 4
            ),
        }
    return {
        "estep_seconds": {k: round(v, 4) for k, v in estep.items()},
        "se_pass_seconds": round(se_pass, 3),
        "fits": fits,
    }


def peak_memory_child(n_persons):
    "Fit n_persons x 100 with 20% missing (SEs included) in a fresh process: (seconds, peak RSS GiB, converged)."
    code = (
        "import time,resource,numpy as np,sys;sys.path.insert(0,'bench');from calculation import simulate;"
        f"from irt_nb.science.calculation import fit_irt;x,_,_=simulate({n_persons},100,0.2);del _;t=time.perf_counter();"
        "m=fit_irt(x,progress=False);"
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
    cases = [(10_000, 50, 0.0)] + ([] if args.quick else [(100_000, 100, 0.0), (100_000, 100, 0.2)])
    results, lever_rows = [], {}
    for n, j, missing in cases:
        case = f"{n}x{j}, {missing:.0%} missing"
        x, a, b = simulate(n, j, missing)
        store = LocalResponses(response_codes(x), 61)
        mle = fit_irt(
            x,
            progress=False,
            standard_errors=False,
            min_node_weight=0,
            float32_start=False,
            tol_param=1e-8,
        )
        best = {p: common_loglik(store, mle.discrimination, mle.difficulty, p) for p in (61, 101)}
        for name, (fn, has_se) in ENGINES.items():
            if name.startswith("girth") and n > 10_000:
                continue  # about 8 minutes per fit at 100k x 100: past this benchmark's time bound
            cheap = n <= 10_000 or name.startswith(
                "irt_nb"
            )  # mirt at 100k: one warm call (10-30 s)
            repeats = args.repeats if cheap else 1
            est, first, median = timed(fn, x, repeats=repeats)
            row = {
                "case": case,
                "engine": name,
                "standard_errors": has_se,
                "first_s": round(first, 3),
                "median_s": round(median, 3),
                "loglik_61_minus_mle": round(common_loglik(store, *est, 61) - best[61], 3),
                "loglik_101_minus_mle": round(common_loglik(store, *est, 101) - best[101], 3),
            }
            results.append(row)
            print(
                f"{case:<24} {name:<34} first {first:7.2f}s  median {median:7.2f}s  "
                f"loglik-MLE (61 pts) {row['loglik_61_minus_mle']:+.3f}",
                flush=True,
            )
        if n >= 100_000:
            lever_rows[case] = levers(x, repeats=2)
            print(json.dumps(lever_rows[case], indent=1), flush=True)
    base = {r["case"]: r for r in results if r["engine"].startswith("irt_nb")}
    for r in results:
        r["time_ratio_to_irt_nb"] = round(r["median_s"] / base[r["case"]]["median_s"], 2)
    memory = None
    if not args.quick:
        seconds, gib, converged = peak_memory_child(1_000_000)
        memory = {
            "case": "1000000x100, 20% missing, SEs included",
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
                "machine": {"cores": len(os.sched_getaffinity(0))},
                "fits": results,
                "levers": lever_rows,
                "memory": memory,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=1,
        )
    )
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
