"""Benchmark: adaptive sessions on `irt-nb serve` with a 2,000-item bank and the SQLite student store.

Targets (issue 16): POST /v1/next-item p99 below 15 ms under wrk with 32 connections; at least 1,000
answers recorded per second. Each wrk round lasts --seconds (bounded) against 127.0.0.1; 3 rounds,
medians. Students are drawn at random from 5,000 who already answered 10 items, so every request reads
(and every answer rewrites) a real state. In-process, the selection itself is timed beside catsim 0.21's
MaxInfoSelector on the same bank (catsim comes with `make bench`). Results: bench/results/adaptive.json.
Usage: make bench (or python bench/adaptive.py --seconds 10 --rounds 3)
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import ROOT, medians, serve_argv, wait, wrk, wrk_options  # noqa: E402

from irt_nb.science.adaptive import AdaptiveEngine, bank_model, select_items  # noqa: E402
from irt_nb.science.model_file import save_model  # noqa: E402
from irt_nb.serving.student_store import StudentStore  # noqa: E402

RESULTS = ROOT / "bench/results/adaptive.json"
N_ITEMS, N_STUDENTS = 2000, 5000


def bank():
    rng = np.random.default_rng(0)
    return bank_model(
        [f"q{j:04d}" for j in range(N_ITEMS)],
        rng.lognormal(0, 0.3, N_ITEMS),
        rng.normal(0, 1.2, N_ITEMS),
    )


def prepare(folder: Path):
    "The bank's model file and a student store beside it with 5,000 students of 10 answers each."
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("students.sqlite*"):
        old.unlink()
    model = bank()
    path = save_model(model, folder / "bank2000.json")
    store, engine = StudentStore(str(folder / "students.sqlite")), AdaptiveEngine(model)
    rng = np.random.default_rng(1)
    from irt_nb.serving.api.models import model_version

    vid = model_version(path)  # the served version: a hash of the file's content
    for s in range(N_STUDENTS):
        answers = [
            (model.item_ids[j], int(rng.random() < 0.5))
            for j in rng.choice(N_ITEMS, 10, replace=False)
        ]
        store.record(vid, f"s{s:05d}", answers, engine, engine.start)
    return path


def lua(path: Path, endpoint: str) -> Path:
    "A wrk script posting to `endpoint` for a random student (and, for answers, a random item)."
    body = (
        'string.format(\'{"student_id": "s%05d", "answers": [{"item_id": "q%04d", "correct": %d}]}\', '
        f"math.random(0, {N_STUDENTS - 1}), math.random(0, {N_ITEMS - 1}), math.random(0, 1))"
        if endpoint == "answers"
        else f'string.format(\'{{"student_id": "s%05d"}}\', math.random(0, {N_STUDENTS - 1}))'
    )
    script = path.with_name(f"{endpoint}.lua")
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'request = function()\n  return wrk.format(nil, "/v1/{"answers" if endpoint == "answers" else "next-item"}", nil, {body})\nend\n'
    )
    return script


def in_process(model, repeats: int = 300) -> dict:
    "Median time of one maximum-information selection on the 2,000-item bank: irt_nb and catsim."
    engine = AdaptiveEngine(model)
    rng = np.random.default_rng(2)
    state = engine.start()
    for j in rng.choice(N_ITEMS, 10, replace=False):
        engine.record(state, model.item_ids[j], int(rng.random() < 0.5))
    times = {}
    start = time.perf_counter_ns
    samples = []
    for _ in range(repeats):
        t = start()
        select_items(engine, state, "mfi")
        samples.append((start() - t) / 1e6)
    times["irt_nb select_items (mfi, EAP from the posterior)"] = statistics.median(samples)
    try:
        from catsim.item_bank import ItemBank
        from catsim.selection import MaxInfoSelector
    except ImportError:
        return times | {"catsim": "not installed (make bench installs it)"}
    items = ItemBank(
        np.column_stack(
            [model.discrimination, model.difficulty, np.zeros(N_ITEMS), np.ones(N_ITEMS)]
        )
    )
    selector = MaxInfoSelector()
    administered = [model.item_ids.index(i) for i in state.items]
    theta = engine.estimate(state)[0]
    samples = []
    for _ in range(repeats):
        t = start()
        selector.select(item_bank=items, administered_items=administered, est_theta=theta)
        samples.append((start() - t) / 1e6)
    times["catsim 0.21 MaxInfoSelector.select"] = statistics.median(samples)
    return times


def main():
    args = wrk_options(__doc__)
    folder = ROOT / "outputs/bench/adaptive"
    path = prepare(folder)
    selection = in_process(bank())
    for name, ms in selection.items():
        print(f"in process: {name}: {ms if isinstance(ms, str) else f'{ms:.3f} ms'}", flush=True)
    scripts = {e: lua(folder / "x", e) for e in ("next-item", "answers")}
    runs = {e: [] for e in scripts}
    for round_ in range(args.rounds):
        for endpoint, script in scripts.items():
            server = subprocess.Popen(
                serve_argv(path, 8811),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            try:
                base = "http://127.0.0.1:8811"
                wait(f"{base}/health")
                result = wrk(base + "/", args.seconds, script)
            finally:
                server.terminate()
                server.wait(timeout=20)
            runs[endpoint].append(result)
            print(
                f"round {round_ + 1} {endpoint:<10} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                f"p99 {result['p99_ms']:6.2f} ms  non-2xx {result['non_2xx']}",
                flush=True,
            )
    summary = {e: medians(rs) for e, rs in runs.items()}
    targets = {
        "next-item p99 < 15 ms": summary["next-item"]["median_p99_ms"] < 15,
        "answers >= 1000/s": summary["answers"]["median_rps"] >= 1000,
    }
    for e, s in summary.items():
        print(
            f"{e:<10} median {s['median_rps']:8.0f} req/s  p99 {s['median_p99_ms']:6.2f} ms  non-2xx {s['non_2xx']}"
        )
    print(targets)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "setting": f"irt-nb serve, 2 workers, {N_ITEMS}-item 2PL bank, SQLite student store with {N_STUDENTS} students; "
                f"wrk -t2 -c32, {args.rounds} rounds of {args.seconds} s; random student (and item) per request",
                "endpoints": summary,
                "selection_in_process_median_ms": selection,
                "targets_met": targets,
            },
            indent=1,
        )
    )
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
