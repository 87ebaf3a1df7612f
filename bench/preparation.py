"""Benchmark: 10 million response rows from CSV and Parquet into the persons x items matrix and report.

Side by side in one run, each measurement in a fresh process (so peak memory is its own):
- baseline: bare pandas, as research code does it: read three columns, drop_duplicates, numpy pivot;
- irt_nb: load_responses (validation, column map, dictionary-encoded ids) + process_responses
  (re-attempt policy, minimums, report), the real pipeline.
Wall time is the median of --repeats runs; writes bench/results/preparation.json.  Usage: make bench
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "preparation.json"
DATA = Path("outputs/bench")


def generate(n_rows: int, seed: int = 0) -> None:
    "Write responses.csv and responses.parquet with n_rows rows (about 2% re-attempts)."
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_students, n_items = n_rows // 100, 200
    student = rng.integers(0, n_students, n_rows)
    item = rng.integers(0, n_items, n_rows)
    table = pa.table(
        {
            "student_id": pa.array(np.char.add("S", np.char.zfill(student.astype(str), 7))),
            "item_id": pa.array(np.char.add("Q", np.char.zfill(item.astype(str), 4))),
            "exam": pa.array(
                np.array(["2026-spring", "2026-autumn", "2025-spring", "2025-autumn"])[item % 4]
            ),
            "subject": pa.array(np.array(["math", "reading", "science"])[item % 3]),
            "correct": pa.array(rng.integers(0, 2, n_rows).astype(np.int8)),
            "answered_at": pa.array(
                np.datetime64("2026-01-01T08:00:00")
                + rng.integers(0, 3600 * 24 * 300, n_rows).astype("timedelta64[s]")
            ),
        }
    )
    DATA.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, DATA / "responses.csv")
    pq.write_table(table, DATA / "responses.parquet")


def baseline(path: Path) -> int:
    import pandas as pd

    cols = ["student_id", "item_id", "correct"]
    frame = (
        pd.read_csv(path, usecols=cols)
        if path.suffix == ".csv"
        else pd.read_parquet(path, columns=cols)
    )
    frame = frame.drop_duplicates(["student_id", "item_id"])
    rows, persons = pd.factorize(frame.student_id)
    cols_, items = pd.factorize(frame.item_id)
    matrix = np.full((len(persons), len(items)), -1, np.int8)
    matrix[rows, cols_] = frame.correct.to_numpy(np.int8)
    return int((matrix >= 0).sum())


def pipeline(path: Path) -> int:
    from irt_nb.science.preparation import load_responses
    from irt_nb.science.processing import process_responses

    matrix = process_responses(load_responses(path), attempt_policy="first")
    assert matrix.report.rows_in.iloc[0] - matrix.report.dropped.sum() == (matrix.codes >= 0).sum()
    return int((matrix.codes >= 0).sum())


def measure(kind: str, path: str) -> dict:
    "Run one measurement in a fresh interpreter; seconds and peak resident memory."
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, path],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        start = time.perf_counter()
        cells = (baseline if args.one[0] == "baseline" else pipeline)(Path(args.one[1]))
        seconds = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                    "cells": cells,
                }
            )
        )
        return
    if not (DATA / "responses.parquet").exists():
        print(f"generating {args.rows:,} rows in {DATA} ...", flush=True)
        generate(args.rows)
    results = []
    for fmt in ("csv", "parquet"):
        path = str(DATA / f"responses.{fmt}")
        for kind in ("baseline", "irt_nb"):
            runs = [measure(kind, path) for _ in range(args.repeats)]
            row = {
                "format": fmt,
                "engine": kind,
                "median_s": round(statistics.median(r["seconds"] for r in runs), 2),
                "peak_gib": round(max(r["peak_gib"] for r in runs), 2),
                "cells": runs[0]["cells"],
                "runs_s": [round(r["seconds"], 2) for r in runs],
            }
            results.append(row)
            print(
                f"{fmt:<8} {kind:<9} median {row['median_s']:6.2f}s  peak {row['peak_gib']:.2f} GiB  cells {row['cells']:,}",
                flush=True,
            )
    for fmt in ("csv", "parquet"):
        base, ours = (
            next(r for r in results if r["format"] == fmt and r["engine"] == e)
            for e in ("baseline", "irt_nb")
        )
        print(f"{fmt}: irt_nb / baseline time ratio {ours['median_s'] / base['median_s']:.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"rows": args.rows, "results": results, "when": time.strftime("%Y-%m-%dT%H:%M:%S")},
            indent=1,
        )
    )
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
