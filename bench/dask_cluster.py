"""Benchmark: 2,000,000 x 100 from Parquet partitions on a LocalCluster vs the in-memory engine at 200,000 x 100.

Both in one run on this machine (2 worker processes x 1 thread, 127.0.0.1). Reports wall time, peak
memory per worker, the cost of one E-step per partition, and an estimate for 100 million responses on
N machines. Writes bench/results/dask_cluster.json.  Usage: make bench
"""

import json
import resource
import time
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster

from irt_nb.science.calculation import fit_irt
from irt_nb.serving.distributed import DaskResponses, write_response_parquet
from irt_nb.science.item_models import probability_correct
from irt_nb.serving.stores import normal_quadrature

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "outputs/bench/wide_2m"
RESULTS = ROOT / "bench/results/dask_cluster.json"
N_ITEMS, MISSING_SHARE, BLOCK = 100, 0.2, 100_000


def generate(n_persons: int, seed: int = 0):
    "Blocks of simulated int8 codes (1, 0, -1), generated block by block to keep memory small."
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 0.3, N_ITEMS), rng.normal(0, 1, N_ITEMS)
    for start in range(0, n_persons, BLOCK):
        n = min(BLOCK, n_persons - start)
        codes = (
            rng.random((n, N_ITEMS)) < probability_correct(rng.standard_normal(n), a, b)
        ).astype(np.int8)
        codes[rng.random(codes.shape) < MISSING_SHARE] = -1
        yield codes


def main():
    items = [f"q{j:03d}" for j in range(N_ITEMS)]
    if not DATA.exists():
        for number, block in enumerate(generate(2_000_000)):
            write_response_parquet(
                block, items, DATA / f"block{number:03d}", rows_per_partition=BLOCK
            )
    memory_codes = np.concatenate(list(generate(200_000, seed=1)))
    start = time.perf_counter()
    in_memory = fit_irt(memory_codes, item_ids=items, standard_errors=False, progress=False)
    memory_seconds = time.perf_counter() - start
    print(
        f"in-memory 200,000 x 100: {memory_seconds:.1f} s, {in_memory.n_iterations} iterations",
        flush=True,
    )
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            processes=True,
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        store = DaskResponses(str(DATA) + "/*/*.parquet", client)
        load_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model = fit_irt(store, standard_errors=False, progress=False)
        fit_seconds = time.perf_counter() - start
        nodes, weights = normal_quadrature(61)
        start = time.perf_counter()
        store.expected_counts(nodes, np.log(weights), model.item_params)
        estep_seconds = time.perf_counter() - start
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        n_partitions = len(store.partitions)
        store.close()
    e_steps = 2 * model.n_iterations + sum(r.accelerated for r in model.history)
    per_partition = estep_seconds * 2 / n_partitions  # two workers work in parallel
    responses_per_partition = BLOCK * N_ITEMS * (1 - MISSING_SHARE)
    estimate = {}
    for machines in (1, 4, 16):
        cores = 8 * machines  # e.g. 8-core machines, one worker thread per core
        partitions = 100e6 / responses_per_partition
        waves = np.ceil(partitions / cores)
        estimate[f"{machines} machines x 8 cores"] = round(e_steps * waves * per_partition, 1)
    result = {
        "in_memory_200k_s": round(memory_seconds, 2),
        "distributed_2m_load_s": round(load_seconds, 2),
        "distributed_2m_fit_s": round(fit_seconds, 2),
        "time_ratio_2m_distributed_to_200k_in_memory": round(fit_seconds / memory_seconds, 2),
        "iterations": model.n_iterations,
        "e_steps": e_steps,
        "one_estep_s": round(estep_seconds, 3),
        "partitions": n_partitions,
        "seconds_per_partition_estep": round(per_partition, 4),
        "peak_rss_per_worker_gib": {k: round(v, 2) for k, v in peaks.items()},
        "client_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "estimate_100m_responses_fit_s": estimate,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(json.dumps(result, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
