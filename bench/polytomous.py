"""Benchmark: irt_nb's polytomous calibration (GRM, GPCM) beside PyPI mirt 1.2.0, in one run, alone and
beside a busy core.

Cases: 100,000 persons x 30 five-category items, GRM and GPCM, complete and with 20% of the answers missing
at random; standard errors included in every engine. mirt runs with its defaults (21 quadrature points) and
with 61 points (irt_nb's default). Each engine's estimates are scored by one likelihood (irt_nb's, 61
Gauss-Hermite points), so "log-likelihood at the MLE" compares like with like: mirt's 21-point estimates fall
short of it. Times are wall seconds: irt_nb the median of --repeats calls, mirt --mirt-repeats calls (one by
default, a call takes minutes; at 61 points only on complete data, where the likelihoods are compared);
mirt runs in a child process stopped after --timeout seconds. The busy run keeps one core spinning (a child
process that stops by itself) and times irt_nb and mirt's default.

Memory: 1,000,000 persons x 30 five-category GRM items, fitted with standard errors in a child process whose
peak resident memory is read from the operating system (target: under 3 GiB).

Writes bench/results/polytomous.json. Usage: python bench/polytomous.py [--quick] [--repeats N]
"""

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contention import busy_core  # noqa: E402

from irt_nb.science.polytomous import (  # noqa: E402
    KINDS,
    MISSING_CODE,
    EMData,
    ItemLayout,
    ScoredResponses,
    e_step,
    fit_polytomous,
    one_hot,
)
from irt_nb.serving.stores import normal_quadrature  # noqa: E402

OUT = Path(__file__).parent / "results" / "polytomous.json"


def simulate(
    kind: str, persons: int, items: int = 30, categories: int = 5, missing: float = 0.0, seed=11
):
    "Category codes 0..K-1 (-1 missing) from known slopes and ordered, well-spread intercepts."
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.8, 2.2, items)
    if kind == "grm":
        d = [
            np.linspace(2.0, -2.0, categories - 1) * a[j] + rng.normal(0, 0.4) for j in range(items)
        ]
    else:
        d = [
            np.cumsum(-np.linspace(-1.5, 1.5, categories - 1) * a[j] + rng.normal(0, 0.3))
            for j in range(items)
        ]
    theta = rng.normal(size=persons)
    codes = np.empty((persons, items), np.int16)
    for j in range(items):
        p = KINDS[kind](theta, a[j], d[j])[0]
        codes[:, j] = (rng.random(persons)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    codes[rng.random(codes.shape) < missing] = MISSING_CODE
    return codes


def loglik_at(kind, codes, a, ds) -> float:
    "The marginal log-likelihood (61 Gauss-Hermite points) at slopes `a` and intercepts `ds`."
    scored = scored_of(codes)
    layout = ItemLayout.of([kind] * codes.shape[1], scored.n_categories)
    vector = np.zeros(layout.n_params)
    for j in range(codes.shape[1]):
        vector[layout.item_slots(j)] = np.concatenate([[a[j]], ds[j]])
    nodes, weights = normal_quadrature(61)
    return e_step(
        EMData(layout, one_hot(scored, layout), scored.codes, nodes, np.log(weights)), vector
    )[0]


def scored_of(codes) -> ScoredResponses:
    k = int(codes.max()) + 1
    return ScoredResponses(
        codes,
        tuple(tuple(range(k)) for _ in range(codes.shape[1])),
        tuple(map(str, range(codes.shape[1]))),
    )


def run_irt_nb(kind, codes, repeats) -> dict:
    times, fit = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        fit = fit_polytomous(scored_of(codes), model=kind)
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "times_s": times,
        "iterations": fit.n_iterations,
        "loglik_61": loglik_at(kind, codes, fit.discrimination, fit.intercepts),
        "se_median_slope": float(np.median(fit.discrimination_se)),
    }


def _mirt_child(queue, kind, codes, n_quadpts, repeats):
    import mirt

    warnings.simplefilter("ignore")
    try:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fit = mirt.fit_mirt(
                codes.astype(np.int64), model=kind.upper(), n_quadpts=n_quadpts, verbose=False
            )
            times.append(time.perf_counter() - start)
        table = fit.coef()  # classical form: discrimination, then GRM thresholds or GPCM steps
        queue.put(
            {
                "times_s": times,
                "a": table.iloc[:, 0].tolist(),
                "b": table.iloc[:, 1:].to_numpy().tolist(),
                "iterations": int(fit.n_iterations),
                "converged": bool(fit.converged),
                "loglik_own": float(fit.log_likelihood),
            }
        )
    except Exception as e:  # noqa: BLE001 - a refusal is a result
        queue.put({"error": f"{type(e).__name__}: {str(e)[:300]}"})


def run_mirt(kind, codes, n_quadpts, repeats, timeout) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_mirt_child, args=(queue, kind, codes, n_quadpts, repeats))
    child.start()
    try:
        found = queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty: past the limit
        found = {"error": f"stopped: no result within {timeout:.0f} s"}
    finally:
        child.kill()
        child.join()
    if "times_s" in found:
        found["median_s"] = statistics.median(found["times_s"])
        a, b = np.array(found.pop("a")), np.array(found.pop("b"))
        # back to slope/intercept: GRM d_k = -a b_k; GPCM d_k = -a (b_1 + ... + b_k)
        ds = [-a[j] * (b[j] if kind == "grm" else np.cumsum(b[j])) for j in range(len(a))]
        found["loglik_61"] = loglik_at(kind, codes, a, ds)
    return found


def _memory_child(persons):
    codes = simulate("grm", persons)
    start = time.perf_counter()
    fit = fit_polytomous(scored_of(codes), model="grm")
    import resource

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "iterations": fit.n_iterations,
                "peak_rss_gib": peak_gib,
            }
        )
    )


def peak_memory(persons: int) -> dict:
    "Fit `persons` x 30 GRM items in a child process: its peak resident memory (GiB) and time."
    import subprocess

    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import polytomous; polytomous._memory_child({persons})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"persons": persons, **json.loads(run.stdout.strip().splitlines()[-1])}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 persons, no busy run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--mirt-repeats", type=int, default=1, help="mirt's calls per case (each takes minutes)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--persons", type=int, help="override the number of persons (a smoke run)")
    args = parser.parse_args()
    persons = args.persons or (20_000 if args.quick else 100_000)
    results = {
        "persons": persons,
        "items": 30,
        "categories": 5,
        "cases": {},
        "settings": vars(args),
    }
    for busy in (False,) if args.quick else (False, True):
        label = "busy" if busy else "alone"
        for kind in ("grm", "gpcm"):
            for missing in (0.0, 0.2):
                name = f"{kind.upper()}, {persons:,} x 30 items x 5 categories" + (
                    ", 20% missing" if missing else ""
                )
                codes = simulate(kind, persons, missing=missing)
                with busy_core(busy):
                    row = {"irt_nb": run_irt_nb(kind, codes, args.repeats)}
                    row["mirt 1.2.0 default (21 points)"] = run_mirt(
                        kind, codes, 21, args.mirt_repeats, args.timeout
                    )
                    if not busy and not missing:  # the like-for-like likelihood, once per model
                        row["mirt 1.2.0, 61 points"] = run_mirt(kind, codes, 61, 1, args.timeout)
                for peer, found in row.items():
                    if peer != "irt_nb" and "median_s" in found:
                        found["ratio_to_irt_nb"] = found["median_s"] / row["irt_nb"]["median_s"]
                results["cases"].setdefault(name, {})[label] = row
                print(
                    f"[{label}] {name}: "
                    + "; ".join(
                        f"{peer} {found.get('median_s', found.get('error'))!s:.8} s, loglik {found.get('loglik_61', float('nan')):.2f}"
                        for peer, found in row.items()
                    ),
                    flush=True,
                )
                OUT.parent.mkdir(exist_ok=True)
                OUT.write_text(json.dumps(results, indent=1, default=float) + "\n")
    if not args.quick:
        results["memory"] = peak_memory(1_000_000)
        print(f"memory: {results['memory']}", flush=True)
        OUT.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
