"""Benchmark: how long `irt-nb serve` (2 workers) takes to answer with 5 million students' abilities.

The same 100-item model with the abilities of --students students, saved two ways: the model file of
irt_nb 0.1 (`irt_nb.model/1`, the abilities inline in the JSON) and today's (the abilities in a
memory-mapped Arrow sidecar). For each, seconds from start to the first `/ready` that says ready and to
the first answer by student_id (requests that arrive while a worker loads wait for it), and the peak memory of the server's processes; medians of --rounds (the
old format once, with --old-timeout as its bound). Results: bench/results/serve_start.json.
Usage: make bench (or python bench/serve_start.py --students 5000000)
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from api import ROOT, model_file, serve_argv  # noqa: E402

RESULTS = ROOT / "bench/results/serve_start.json"


def models(n: int) -> tuple[Path, Path, str]:
    "The model with n students as a sidecar model file and as a format-1 file; a student to look up."
    from irt_nb.science.model_file import StudentAbilities, load_model, model_to_dict, save_model

    folder = ROOT / f"outputs/bench/students{n}"
    folder.mkdir(parents=True, exist_ok=True)
    new, old = folder / "model.json", folder / "model_v1.json"
    probe = f"S{n - 1:08d}"
    if not new.exists() or not old.exists():
        rng = np.random.default_rng(0)
        ids = np.char.add("S", np.char.zfill(np.arange(n).astype(str), 8))
        theta, se = rng.normal(size=n), rng.uniform(0.2, 0.5, n)
        base = load_model(model_file())
        t = time.perf_counter()
        save_model(replace(base, abilities=StudentAbilities.from_arrays(ids, theta, se)), new)
        print(f"wrote {new} and its sidecar in {time.perf_counter() - t:.1f} s", flush=True)
        doc = model_to_dict(replace(base, abilities=None))  # the 0.1 layout: persons inline
        doc.update(
            format="irt_nb.model/1",
            fit={
                f: doc.pop(f)
                for f in ("loglik", "aic", "bic", "n_parameters", "n_persons", "n_responses")
            },
            convergence={
                f: doc.pop(f) for f in ("converged", "n_iterations", "max_abs_gradient", "history")
            },
        )
        for item in doc["items"]:
            item["id"] = item.pop("item_id")
        with open(old, "w") as f:
            f.write(json.dumps(doc)[:-1] + ', "abilities": {"method": "eap", "persons": {')
            f.write(
                ",".join(
                    f'"{i}": [{a!r}, {b!r}]'
                    for i, a, b in zip(ids.tolist(), theta.tolist(), se.tolist(), strict=True)
                )
            )
            f.write("}}}")
    return new, old, probe


def tree_rss_mib(pid: int) -> float:
    "Resident memory of a process and its children (MiB)."
    out = subprocess.run(
        ["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True
    ).stdout
    return sum(int(x) for x in out.split()) / 1024


def start(model: Path, probe: str, timeout: float, port: int = 8821) -> dict:
    "Seconds to ready and to a correct lookup, and the peak memory meanwhile (None: not ready in time)."
    began = time.monotonic()
    server = subprocess.Popen(
        serve_argv(model, port),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak, ready = 0.0, None
    try:
        while time.monotonic() - began < timeout:
            peak = max(peak, tree_rss_mib(server.pid))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
                    if json.loads(reply.read())["status"] == "ready":
                        ready = time.monotonic() - began
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.05)
        answer = None
        if ready is not None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/probabilities",
                data=json.dumps({"student_id": probe, "items": ["q000"]}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as reply:
                answer = json.loads(reply.read())["ability"]
            peak = max(peak, tree_rss_mib(server.pid))
        return {
            "ready_s": ready,
            "first_answer_s": time.monotonic() - began if answer else None,
            "peak_rss_mib": peak,
            "answer": answer,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-timeout", type=float, default=180)
    args = parser.parse_args()
    new, old, probe = models(args.students)
    sizes = {
        "model_json_bytes": new.stat().st_size,
        "sidecar_bytes": sum(p.stat().st_size for p in new.parent.glob("model.abilities.*.arrow")),
        "format1_json_bytes": old.stat().st_size,
    }
    print(sizes, flush=True)
    rounds = []
    for i in range(args.rounds):
        rounds.append(start(new, probe, timeout=60))
        print(
            f"round {i + 1} sidecar: ready in {rounds[-1]['ready_s']:.2f} s, peak {rounds[-1]['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    before = start(old, probe, timeout=args.old_timeout)
    print(
        f"format 1 (inline JSON): ready in {before['ready_s']} s, peak {before['peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    summary = {
        "students": args.students,
        **sizes,
        "sidecar": {
            "median_ready_s": statistics.median(r["ready_s"] for r in rounds),
            "median_peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rounds),
            "rounds": rounds,
        },
        "format1_inline": before,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
