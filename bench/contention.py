"""Benchmark: the fit and the server on a shared machine, alone and beside one busy core, in one run.

The same seeded 100,000 x 100 2PL data (as bench/calculation.py) for every engine, timed alone and
with one core kept busy by a spin loop (a child process that stops by itself):

- irt_nb as it ships: BLAS held at one thread, chunks of persons on `worker_threads()` threads;
- irt_nb on one thread (IRT_NB_THREADS=1), for the cost of a single core;
- the engine before this change, in this same process: chunks one after another, each product split
  by OpenBLAS's own threads (irt_nb's BLAS limit switched off, the old chunk size);
- PyPI mirt 1.2.0 (Rust core) at its defaults (21 points, standard errors), as in bench/calculation.py.

Then `irt-nb serve` with 2 workers under wrk (32 connections): alone, beside a busy core, and beside a
fit running in another process; and the fit's own time beside the loaded server.

Wall times are medians of --repeats calls after a warm-up call. Writes bench/results/contention.json.
Usage: make bench (or python bench/contention.py [--quick])
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import model_file, serve_argv, wait, wrk  # noqa: E402
from calculation import run_mirt, simulate  # noqa: E402

import irt_nb.serving.stores  # noqa: E402
from irt_nb.science.calculation import fit_irt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/results/contention.json"
SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_core(on: bool, seconds: float = 900):
    "A spin loop on one core (a child process, stopped on exit and by itself after `seconds`)."
    if not on:
        yield
        return
    spin = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)])
    time.sleep(0.3)
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


@contextlib.contextmanager
def engine_before():
    "The engine before: serial chunks of the old size, each product on OpenBLAS's own threads."
    saved = irt_nb.serving.stores.one_blas_thread, os.environ.get("IRT_NB_THREADS")
    irt_nb.serving.stores.one_blas_thread = contextlib.nullcontext
    os.environ["IRT_NB_THREADS"] = "1"
    try:
        yield {"chunk_size": (1 << 21) // 100}
    finally:
        irt_nb.serving.stores.one_blas_thread = saved[0]
        if saved[1] is None:
            os.environ.pop("IRT_NB_THREADS")
        else:
            os.environ["IRT_NB_THREADS"] = saved[1]


@contextlib.contextmanager
def one_thread():
    os.environ["IRT_NB_THREADS"] = "1"
    try:
        yield {}
    finally:
        os.environ.pop("IRT_NB_THREADS")


def time_fit(x, setup, repeats: int) -> dict:
    "Median wall time of `repeats` fits (after a warm-up fit), and the log-likelihood."
    times = []
    with setup as options:
        model = fit_irt(x, progress=False, **options)
        for _ in range(repeats):
            start = time.perf_counter()
            fit_irt(x, progress=False, **options)
            times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "runs_s": times, "loglik": model.loglik}


def time_mirt(x, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_mirt(x, 21)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "runs_s": times}


FIT_LOOP = """
import sys, time
sys.path.insert(0, {bench!r})
from calculation import simulate
from irt_nb.science.calculation import fit_irt
x, _, _ = simulate({n}, 100, 0.0, seed=0)
end, times = time.monotonic() + {seconds}, []
while time.monotonic() < end:
    start = time.perf_counter(); fit_irt(x, progress=False); times.append(time.perf_counter() - start)
print(" ".join(f"{{t:.4f}}" for t in times))
"""


def fits_beside(n_persons: int, seconds: float) -> subprocess.Popen:
    "Fits one after another in a child process for `seconds` (it prints their times and stops)."
    code = FIT_LOOP.format(bench=str(ROOT / "bench"), n=n_persons, seconds=seconds)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def server_figures(seconds: int, n_persons: int) -> dict:
    "wrk against `irt-nb serve --workers 2`: alone, beside a busy core, beside fits in another process."
    model = model_file()
    body = json.dumps({"theta": 0.3, "items": [f"q{j:03d}" for j in range(0, 100, 5)]})
    lua = ROOT / "outputs/bench/post.lua"
    lua.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(body)}\n'
    )
    port = 8831
    log = open(ROOT / "outputs/bench/contention_server.log", "w")
    server = subprocess.Popen(
        serve_argv(model, port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    out = {}
    try:
        wait(f"{url}/health")
        wrk(f"{url}/v1/probabilities", 2, lua)  # warm-up
        out["alone"] = wrk(f"{url}/v1/probabilities", seconds, lua)
        with busy_core(True):
            out["beside a busy core"] = wrk(f"{url}/v1/probabilities", seconds, lua)
        fitting = fits_beside(n_persons, seconds + 5)
        time.sleep(4)  # the child has its data and is fitting
        out["beside a running fit"] = wrk(f"{url}/v1/probabilities", seconds, lua)
        beside = [float(t) for t in fitting.communicate(timeout=600)[0].split()]
        alone = [
            float(t) for t in fits_beside(n_persons, seconds).communicate(timeout=600)[0].split()
        ]
        out["fit alone (s)"] = {"median_s": statistics.median(alone), "runs_s": alone}
        out["fit beside the loaded server (s)"] = {
            "median_s": statistics.median(beside),
            "runs_s": beside,
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mirt-repeats", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10, help="wrk seconds per server figure")
    parser.add_argument("--quick", action="store_true", help="20,000 persons, 1 repeat, no mirt")
    args = parser.parse_args()
    if args.quick:
        args.persons, args.repeats, args.mirt_repeats, args.seconds = 20_000, 1, 0, 3
    x, _, _ = simulate(args.persons, 100, 0.0, seed=0)
    setups = {
        "irt_nb (parallel chunks, 1 BLAS thread)": lambda: contextlib.nullcontext({}),
        "irt_nb (IRT_NB_THREADS=1)": one_thread,
        "irt_nb before (serial chunks, multi-threaded BLAS)": engine_before,
    }
    fits = {}
    for condition in ("alone", "beside a busy core"):
        with busy_core(condition != "alone"):
            for name, setup in setups.items():
                fits.setdefault(name, {})[condition] = time_fit(x, setup(), args.repeats)
                print(
                    f"{condition:<20} {name:<52} {fits[name][condition]['median_s']:8.2f} s",
                    flush=True,
                )
            if args.mirt_repeats:
                name = "mirt 1.2.0 (21 pts, default, SEs)"
                fits.setdefault(name, {})[condition] = time_mirt(x, args.mirt_repeats)
                print(
                    f"{condition:<20} {name:<52} {fits[name][condition]['median_s']:8.2f} s",
                    flush=True,
                )
    ours = "irt_nb (parallel chunks, 1 BLAS thread)"
    for figures in fits.values():
        figures["slowdown_beside_busy_core"] = round(
            figures["beside a busy core"]["median_s"] / figures["alone"]["median_s"], 2
        )
    mirt = fits.get("mirt 1.2.0 (21 pts, default, SEs)")
    ratios = {}
    if mirt:
        for condition in ("alone", "beside a busy core"):
            ratios[condition] = round(
                mirt[condition]["median_s"] / fits[ours][condition]["median_s"], 1
            )
    server = server_figures(args.seconds, args.persons)
    for name, figure in server.items():
        shown = (
            f"{figure['median_s']:.2f} s"
            if "median_s" in figure
            else f"{figure['rps']:.0f} req/s p99 {figure['p99_ms']:.1f} ms"
        )
        print(f"server {name:<40} {shown}", flush=True)
    result = {
        "data": f"{args.persons} x 100 2PL, seeded (bench/calculation.py simulate, seed 0)",
        "busy core": "one child process spinning in a Python loop",
        "cores": len(os.sched_getaffinity(0)),
        "repeats": args.repeats,
        "fits": fits,
        "mirt_over_irt_nb": ratios,
        "server (irt-nb serve --workers 2, wrk 32 connections)": server,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if not args.quick:
        OUT.write_text(json.dumps(result, indent=1))
        print(f"written {OUT}")
    print(
        json.dumps(
            {
                "mirt_over_irt_nb": ratios,
                "slowdowns": {k: v["slowdown_beside_busy_core"] for k, v in fits.items()},
            }
        )
    )
    return 0 if np.isfinite(fits[ours]["alone"]["median_s"]) else 1


if __name__ == "__main__":
    sys.exit(main())
