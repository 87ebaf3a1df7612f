"""Benchmark: ordinary traffic while four clients send the heaviest requests the server allows.

`irt-nb serve` (2 workers, 100-item model, access log off) on 127.0.0.1. wrk sends the ordinary request
(20 items, by theta) over 32 connections for --seconds; in the loaded rounds a second wrk sends, over 4
connections, the heaviest allowed batch (200 students x 100 items = 20,000 work units, the default
limit). Rounds alternate alone / loaded, with the work meter at its default rate and switched off
(a rate no request ever waits for), so the meter's effect is measured in the same run. Medians go to
bench/results/heavy_requests.json.  Usage: make bench (or python bench/heavy_requests.py --seconds 10)
"""

import json
import re
import statistics
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from api import ROOT, model_file, serve_argv, wait, wrk, wrk_options  # noqa: E402 (same model, same wrk)

RESULTS = ROOT / "bench/results/heavy_requests.json"


def lua(name: str, body: dict) -> Path:
    path = ROOT / f"outputs/bench/{name}.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    return path


def heavy_wrk(url: str, seconds: int, script: Path, out: dict) -> None:
    "The heavy clients: 4 connections, closed loop; how many answers and of which status."
    text = subprocess.run(
        ["wrk", "-t1", "-c4", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    out["heavy_rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["heavy_non_2xx"] = int(refused[1]) if refused else 0


def one_round(model: Path, rate: float, loaded: bool, seconds: int, port: int) -> dict:
    server = subprocess.Popen(
        serve_argv(model, port, "--heavy-rate", str(rate)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait(f"{base}/ready")
        items = [f"q{j:03d}" for j in range(100)]
        normal = lua("normal", {"theta": 0.3, "items": items[::5]})
        heavy = lua(
            "heavy",
            {"students": [{"theta": 0.1 * (i % 40) - 2} for i in range(200)], "items": items},
        )
        extra: dict = {}
        thread = None
        if loaded:
            thread = threading.Thread(
                target=heavy_wrk, args=(f"{base}/v1/probabilities/batch", seconds + 2, heavy, extra)
            )
            thread.start()
        result = wrk(f"{base}/v1/probabilities", seconds, normal)
        if thread:
            thread.join()
        return {**result, **extra}
    finally:
        server.terminate()
        server.wait(timeout=20)


def main():
    args = wrk_options(__doc__)
    model = model_file()
    setups = {
        "alone": (100_000, False),
        "4 heavy clients, meter on (100,000 units/s per worker)": (100_000, True),
        "4 heavy clients, meter off": (1e12, True),
    }
    runs = {name: [] for name in setups}
    for round_ in range(args.rounds):
        for name, (rate, loaded) in setups.items():
            result = one_round(model, rate, loaded, args.seconds, 8811)
            runs[name].append(result)
            print(
                f"round {round_ + 1} {name:<55} ordinary {result['rps']:7.0f} req/s p99 {result['p99_ms']:6.2f} ms"
                + (
                    f"  heavy {result['heavy_rps']:6.1f} req/s ({result['heavy_non_2xx']} refused)"
                    if loaded
                    else ""
                ),
                flush=True,
            )
    alone = statistics.median(r["rps"] for r in runs["alone"])
    summary = {
        name: {
            "median_ordinary_rps": statistics.median(r["rps"] for r in rs),
            "median_ordinary_p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "kept_share": statistics.median(r["rps"] for r in rs) / alone,
            **(
                {
                    "median_heavy_rps": statistics.median(r["heavy_rps"] for r in rs),
                    "heavy_refused_429": sum(r["heavy_non_2xx"] for r in rs),
                }
                if setups[name][1]
                else {}
            ),
            "rounds": rs,
        }
        for name, rs in runs.items()
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"seconds": args.seconds, "rounds": args.rounds, "results": summary}, indent=1)
        + "\n"
    )
    for name, s in summary.items():
        print(f"{name:<55} {s['median_ordinary_rps']:7.0f} req/s  kept {s['kept_share']:.0%}")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
