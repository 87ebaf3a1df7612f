"""Benchmark: the probabilities endpoint of `irt-nb serve` beside Flask + jsonschema + gunicorn, in one run.

Both serve the same computation from the same 100-item model with one worker each, on 127.0.0.1; wrk
sends a 20-item request over 32 connections for --seconds (bounded), three rounds alternating the
servers; medians of requests/s and of p99 latency go to bench/results/api.json.  Usage: make bench
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench/results/api.json"


def serve_argv(model, port: int, *extra: str, workers: int = 2, log_level: str = "warning") -> list:
    "The `irt-nb serve` command line of one benchmarked server (on 127.0.0.1)."
    options = ["--port", str(port), "--workers", str(workers), "--log-level", log_level]
    return [str(BIN / "irt-nb"), "serve", "--model", str(model), *options, *extra]


def model_file() -> Path:
    "A 2PL model of 100 items fitted on simulated answers (written once)."
    from irt_nb.science.calculation import fit_irt
    from irt_nb.science.item_models import probability_correct
    from irt_nb.science.model_file import save_model

    path = ROOT / "outputs/bench/model100.json"
    if not path.exists():
        rng = np.random.default_rng(0)
        a, b = rng.lognormal(0, 0.3, 100), rng.normal(0, 1, 100)
        x = (rng.random((5000, 100)) < probability_correct(rng.standard_normal(5000), a, b)).astype(
            float
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(fit_irt(x, item_ids=[f"q{j:03d}" for j in range(100)], progress=False), path)
    return path


def wait(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:  # answering, even if with an error status
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


def wrk(url: str, seconds: int, lua: Path) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])

    def ms(label):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non2xx[1]) if non2xx else 0,
    }


def medians(runs: list[dict]) -> dict:
    "Medians of wrk rounds (requests/s, p50 and p99 latency), the non-2xx total, and the rounds themselves."
    return {
        "median_rps": statistics.median(r["rps"] for r in runs),
        "median_p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "runs": runs,
    }


def wrk_options(description: str) -> argparse.Namespace:
    "--seconds and --rounds of a wrk benchmark; stops with a message when wrk is missing."
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    return args


def main():
    args = wrk_options(__doc__)
    model = model_file()
    body = json.dumps({"theta": 0.3, "items": [f"q{j:03d}" for j in range(0, 100, 5)]})
    lua = ROOT / "outputs/bench/post.lua"
    lua.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(body)}\n'
    )
    env = {**os.environ, "IRT_NB_MODEL": str(model)}
    servers = {
        "irt_nb (Starlette+orjson+fastjsonschema, uvicorn, 1 worker, JSON access log)": serve_argv(
            model, 8801, workers=1, log_level="info"
        ),
        "irt_nb (same, access log off)": serve_argv(model, 8802, workers=1),
        "Flask + jsonschema, gunicorn, 1 worker": [
            str(BIN / "gunicorn"),
            "-w",
            "1",
            "-b",
            "127.0.0.1:8803",
            "bench.flask_baseline:app",
        ],
    }
    ports = {
        name: cmd[cmd.index("--port") + 1] if "--port" in cmd else "8803"
        for name, cmd in servers.items()
    }
    runs = {name: [] for name in servers}
    for round_ in range(args.rounds):
        for name, cmd in servers.items():
            log = open(ROOT / "outputs/bench/server.log", "w")
            server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                base = f"http://127.0.0.1:{ports[name]}"
                wait(f"{base}/health" if "irt_nb" in name else base)
                result = wrk(f"{base}/v1/probabilities", args.seconds, lua)
            finally:
                server.terminate()
                server.wait(timeout=10)
            runs[name].append(result)
            print(
                f"round {round_ + 1} {name:<80} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  non-2xx {result['non_2xx']}",
                flush=True,
            )
    summary = {name: medians(rs) for name, rs in runs.items()}
    baseline = summary["Flask + jsonschema, gunicorn, 1 worker"]["median_rps"]
    for name, s in summary.items():
        s["ratio_to_flask"] = round(s["median_rps"] / baseline, 2)
        print(
            f"{name:<80} median {s['median_rps']:8.0f} req/s  p99 {s['median_p99_ms']:6.2f} ms  x{s['ratio_to_flask']:.2f} Flask"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "connections": 32,
                "seconds": args.seconds,
                "request_items": 20,
                "model_items": 100,
                "servers": summary,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=1,
        )
    )
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
