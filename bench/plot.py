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
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
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
    fig.tight_layout()
    fig.savefig(RESULTS / "summary.png", dpi=90)
    print(f"written {RESULTS / 'summary.png'}")


if __name__ == "__main__":
    main()
