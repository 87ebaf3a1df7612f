"""Plot the benchmark results in bench/results/*.json into bench/results/summary.png (run by make bench)."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main():
    calc = json.loads((RESULTS / "calculation.json").read_text())
    prep = json.loads((RESULTS / "preparation.json").read_text())
    api = json.loads((RESULTS / "api.json").read_text())
    fig, grid = plt.subplots(4, 3, figsize=(16, 20))
    axes = grid[0]
    cases = list(dict.fromkeys(r["case"] for r in calc["fits"]))
    engines = list(dict.fromkeys(r["engine"] for r in calc["fits"]))
    width = 0.8 / len(engines)
    for i, engine in enumerate(engines):
        rows = {r["case"]: r["median_s"] for r in calc["fits"] if r["engine"] == engine}
        axes[0].bar(
            [c + i * width for c in range(len(cases))],
            [rows.get(c, 0) for c in cases],
            width,
            label=engine,
        )
    axes[0].set(
        title="2PL fit time (median, lower is better)",
        ylabel="seconds (log scale)",
        yscale="log",
        xticks=[c + 0.4 - width / 2 for c in range(len(cases))],
        xticklabels=[c.replace(", ", "\n") for c in cases],
    )
    axes[0].legend(fontsize=8)
    labels = [f"{r['format']}\n{r['engine']}" for r in prep["results"]]
    axes[1].bar(labels, [r["median_s"] for r in prep["results"]], color=["grey", "steelblue"] * 2)
    axes[1].axhline(10, color="firebrick", linestyle="--", label="target 10 s")
    axes[1].set(title=f"{prep['rows']:,} rows into the matrix (median)", ylabel="seconds")
    axes[1].legend()
    names = list(api["servers"])
    axes[2].barh(
        ["irt_nb, log on", "irt_nb, log off", "Flask + jsonschema"][: len(names)],
        [api["servers"][n]["median_rps"] for n in names],
        color=["steelblue", "lightsteelblue", "grey"],
    )
    axes[2].set(
        title="probabilities endpoint, wrk, 32 connections",
        xlabel="requests per second (1 worker each)",
    )
    _serving(grid[1])
    _adaptive(grid[2])
    _contention(grid[3])
    fig.tight_layout()
    fig.savefig(RESULTS / "summary.png", dpi=90)
    print(f"written {RESULTS / 'summary.png'}")


def _serving(axes):
    "Second row: ordinary traffic beside heavy requests, and the start with 5 million students."
    heavy_path, start_path = RESULTS / "heavy_requests.json", RESULTS / "serve_start.json"
    if heavy_path.exists():
        heavy = json.loads(heavy_path.read_text())["results"]
        names = list(heavy)
        axes[0].bar(
            ["alone", "4 heavy,\nmeter on", "4 heavy,\nmeter off"][: len(names)],
            [heavy[n]["median_ordinary_rps"] for n in names],
            color=["steelblue", "lightsteelblue", "grey"],
        )
        for i, n in enumerate(names):
            axes[0].annotate(
                f"{heavy[n]['kept_share']:.0%}",
                (i, heavy[n]["median_ordinary_rps"]),
                ha="center",
                va="bottom",
            )
        axes[0].set(
            title="ordinary traffic beside the heaviest allowed batches",
            ylabel="requests per second (2 workers)",
        )
    if start_path.exists():
        start = json.loads(start_path.read_text())
        old = start["format1_inline"]["ready_s"]
        axes[1].bar(
            ["sidecar (memory-mapped)", "inline JSON (irt_nb 0.1)"],
            [start["sidecar"]["median_ready_s"], old if old is not None else 180],
            color=["steelblue", "grey"],
        )
        axes[1].set(
            title=f"serve ready with {start['students']:,} students (2 workers)",
            ylabel="seconds",
            yscale="log",
        )
        if old is None:
            axes[1].annotate("not ready in 180 s", (1, 180), ha="center", va="bottom")
        axes[2].bar(
            ["sidecar", "inline JSON"],
            [start["sidecar"]["median_peak_rss_mib"], start["format1_inline"]["peak_rss_mib"]],
            color=["steelblue", "grey"],
        )
        axes[2].set(title="peak memory of the server's processes", ylabel="MiB")


def _contention(axes):
    "A shared machine (bench/contention.py): each fit alone and beside a busy core, the server beside a fit."
    path = RESULTS / "contention.json"
    if not path.exists():
        return
    result = json.loads(path.read_text())
    fits = result["fits"]
    names = list(fits)
    labels = {
        "IRT_NB_THREADS=1": "irt_nb\n1 thread",
        "before": "before\n(BLAS threads)",
        "mirt": "mirt 1.2.0",
    }
    short = [next((v for k, v in labels.items() if k in n), "irt_nb") for n in names]
    for offset, condition, color in (
        (-0.2, "alone", "steelblue"),
        (0.2, "beside a busy core", "firebrick"),
    ):
        axes[0].bar(
            [i + offset for i in range(len(names))],
            [fits[n][condition]["median_s"] for n in names],
            0.4,
            label=condition,
            color=color,
        )
    axes[0].set(
        title="fit time, 100,000 x 100 (median)", ylabel="seconds (log scale)", yscale="log"
    )
    axes[0].set_xticks(range(len(names)), short, fontsize=8)
    axes[0].legend()
    axes[1].bar(short, [fits[n]["slowdown_beside_busy_core"] for n in names], color="grey")
    axes[1].axhline(2.5, color="firebrick", linestyle="--", label="at most 2.5x")
    axes[1].axhline(2.0, color="grey", linestyle=":", label="2x: half the machine")
    axes[1].set(title="slowdown beside one busy core", ylabel="busy / alone")
    axes[1].tick_params(axis="x", labelsize=8)
    axes[1].legend()
    server = result["server (irt-nb serve --workers 2, wrk 32 connections)"]
    conditions = [c for c in ("alone", "beside a busy core", "beside a running fit") if c in server]
    axes[2].bar(
        conditions,
        [server[c]["rps"] for c in conditions],
        color=["steelblue", "firebrick", "darkorange"],
    )
    axes[2].set_xticks(range(len(conditions)), ["alone", "busy core", "beside a fit"])
    axes[2].set(title="irt-nb serve, 2 workers, probabilities", ylabel="requests per second")


def _adaptive(axes):
    "Third row: the simulation study's accuracy, the adaptive endpoints under wrk, selection beside catsim."
    study_path, load_path = RESULTS / "adaptive_simulation.json", RESULTS / "adaptive.json"
    if study_path.exists():
        study = json.loads(study_path.read_text())
        for name, by_length in study["rmse_by_length"].items():
            lengths = [int(n) for n in by_length]
            axes[0].plot(
                lengths,
                list(by_length.values()),
                "--" if name.startswith("fixed") else "-",
                marker=".",
                label=name,
            )
        axes[0].set(
            title=f"adaptive simulation: {study['n_students']} students",
            xlabel="items answered",
            ylabel="RMSE of θ",
        )
        axes[0].legend(fontsize=7)
    if load_path.exists():
        load = json.loads(load_path.read_text())
        endpoints = load["endpoints"]
        axes[1].bar(
            list(endpoints),
            [e["median_p99_ms"] for e in endpoints.values()],
            color=["steelblue", "lightsteelblue"],
        )
        axes[1].axhline(15, color="firebrick", linestyle="--", label="next-item target 15 ms")
        for i, e in enumerate(endpoints.values()):
            axes[1].annotate(
                f"{e['median_rps']:,.0f}/s", (i, e["median_p99_ms"]), ha="center", va="bottom"
            )
        axes[1].set(
            title="adaptive endpoints, 2,000 items, wrk 32 connections", ylabel="p99 latency (ms)"
        )
        axes[1].legend()
        selection = {
            k: v for k, v in load["selection_in_process_median_ms"].items() if isinstance(v, float)
        }
        axes[2].barh(
            [k.split(" (")[0] for k in selection],
            list(selection.values()),
            color=["steelblue", "grey"][: len(selection)],
        )
        axes[2].set(
            title="one maximum-information selection, 2,000 items", xlabel="milliseconds (median)"
        )


if __name__ == "__main__":
    main()
