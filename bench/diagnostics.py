"""Benchmark: irt_nb's fit diagnostics and score table beside PyPI mirt 1.2.0, in one run, alone and
beside a busy core.

Cases (the seeded 2PL data of bench/calculation.py):
- model fit (M2, RMSEA, SRMSR, CFI, TLI): 100 items x 100,000 persons, complete. Target: < 10 s.
- item fit S-X2: the same data. Target: < 10 s.
- the summed-score table (Lord-Wingersky EAP, reliability): 200 items. Target: < 1 s.
- with 20% of the answers missing at random, 30 items x 20,000 persons: M2 and S-X2.

Each engine computes its statistics from its own 2PL fit of the same data (mirt at 61 points, as its
21-point default shrinks the slopes of 100 items). Times are wall seconds: the first call, and the
median of --repeats more. mirt runs in a child process that is stopped after --timeout seconds; a
call that refuses the data (missing answers) is recorded with its error. The busy run keeps one core
spinning (a child process that stops by itself).

Writes bench/results/diagnostics.json. Usage: python bench/diagnostics.py [--quick] [--repeats N]
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
from calculation import simulate  # noqa: E402
from contention import busy_core  # noqa: E402

from irt_nb.science.calculation import fit_irt  # noqa: E402
from irt_nb.science.diagnostics import model_fit, s_x2  # noqa: E402
from irt_nb.science.score_tables import score_table  # noqa: E402
from irt_nb.serving.stores import MISSING  # noqa: E402

OUT = Path(__file__).parent / "results" / "diagnostics.json"


def timed(call, repeats: int) -> dict:
    "First call and the median of `repeats` more (seconds), and the first result."
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    again = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        again.append(time.perf_counter() - start)
    return {
        "first_s": first,
        "median_s": statistics.median(again) if again else first,
        "result": result,
    }


# --- mirt, in a child process -----------------------------------------------------------------------
def _mirt_calls(fit, x):
    import mirt
    from mirt.scoring import eapsum_table

    return {
        "model_fit": lambda: mirt.compute_fit_indices(fit, x),
        "s_x2": lambda: mirt.itemfit(fit, x, statistics=["S_X2"]),
        "score_table": lambda: eapsum_table(fit, x),
    }


def _mirt_child(queue, x, statistic, repeats):
    import mirt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = mirt.fit_mirt(
                np.where(np.isnan(x), -1, x).astype(np.int64), model="2PL", n_quadpts=61
            )
            found = timed(_mirt_calls(fit, x)[statistic], repeats)
            queue.put(
                {k: v for k, v in found.items() if k != "result"}
                | {"summary": _summary(statistic, found["result"])}
            )
        except Exception as e:  # noqa: BLE001 - a refusal is a result
            queue.put({"error": f"{type(e).__name__}: {str(e)[:200]}"})


def _summary(statistic, out) -> dict:
    if statistic == "model_fit":
        return {
            k: float(out[k]) for k in ("M2", "M2_df", "RMSEA", "SRMSR", "CFI", "TLI") if k in out
        }
    if statistic == "s_x2":
        return {"items_p_below_0.05": int((out["p_value"] < 0.05).sum()), "n_items": len(out)}
    return {"rows": int(getattr(out, "n_scores", 0))}


def run_mirt(x, statistic, repeats, timeout):
    "mirt's own 2PL fit and one statistic in a child process; {'error': ...} when it refuses or times out."
    queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=_mirt_child, args=(queue, x, statistic, repeats))
    child.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty: the call ran past the limit
        return {"error": f"stopped: no result within {timeout:.0f} s (fit included)"}
    finally:
        child.kill()
        child.join()


# --- irt_nb -------------------------------------------------------------------------------------------
def run_irt_nb(x, statistic, repeats):
    model = fit_irt(x, progress=False)
    codes = np.where(np.isnan(x), MISSING, x).astype(np.int8)
    call = {
        "model_fit": lambda: model_fit(model, codes),
        "s_x2": lambda: s_x2(model, codes),
        "score_table": lambda: score_table(model),
    }[statistic]
    found = timed(call, repeats)
    out = found.pop("result")
    if statistic == "model_fit":
        found["summary"] = {"M2": out.m2, "M2_df": out.df, "RMSEA": out.rmsea, "SRMSR": out.srmsr, "CFI": out.cfi, "TLI": out.tli}  # fmt: skip
    elif statistic == "s_x2":
        found["summary"] = {"items_p_below_0.05": int((out.p < 0.05).sum()), "n_items": len(out)}
    else:
        found["summary"] = {"rows": len(out.table), "reliability": out.reliability}
    return found


CASES = {  # name: (statistic, persons, items, missing, target seconds)
    "M2, 100 items x 100,000 persons": ("model_fit", 100_000, 100, 0.0, 10.0),
    "S-X2, 100 items x 100,000 persons": ("s_x2", 100_000, 100, 0.0, 10.0),
    "score table, 200 items": ("score_table", 5_000, 200, 0.0, 1.0),
    "M2, 30 items x 20,000 persons, 20% missing": ("model_fit", 20_000, 30, 0.2, None),
    "S-X2, 30 items x 20,000 persons, 20% missing": ("s_x2", 20_000, 30, 0.2, None),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the persons, no busy run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="mirt: seconds per case (its fit included)"
    )
    args = parser.parse_args()
    results = {"cases": {}, "settings": vars(args)}
    for busy in (False,) if args.quick else (False, True):
        label = "busy" if busy else "alone"
        for name, (statistic, persons, items, missing, target) in CASES.items():
            persons = persons // 10 if args.quick else persons
            x, _, _ = simulate(persons, items, missing)
            with busy_core(busy):
                ours = run_irt_nb(x, statistic, args.repeats)
                theirs = run_mirt(x, statistic, args.repeats, args.timeout)
            case = results["cases"].setdefault(name, {"target_s": target})
            case[label] = {"irt_nb": ours, "mirt 1.2.0": theirs}
            if "median_s" in theirs:
                case[label]["mirt / irt_nb (median)"] = theirs["median_s"] / ours["median_s"]
            shown = theirs.get("median_s", theirs.get("error"))
            print(
                f"[{label}] {name}: irt_nb {ours['median_s']:.3f} s (first {ours['first_s']:.3f}), mirt {shown}",
                flush=True,
            )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
