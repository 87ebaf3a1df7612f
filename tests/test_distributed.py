"""Distributed fit on a LocalCluster (two worker processes on 127.0.0.1): same answer, survives a lost worker."""

import os
import signal
import threading

import numpy as np
import pytest
from distributed import Client, LocalCluster

from irt_nb.science.calculation import fit_irt
from irt_nb.science.item_models import probability_correct
from irt_nb.serving.distributed import DaskResponses, write_response_parquet


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(12)
    a, b = rng.lognormal(0, 0.3, 25), rng.normal(0, 1, 25)
    x = (rng.random((20_000, 25)) < probability_correct(rng.standard_normal(20_000), a, b)).astype(
        float
    )
    x[rng.random(x.shape) < 0.3] = np.nan
    codes = np.where(np.isnan(x), -1, x).astype(np.int8)
    items = [f"q{j:02d}" for j in range(25)]
    dataset = write_response_parquet(
        codes, items, tmp_path_factory.mktemp("dist") / "responses", rows_per_partition=2_000
    )
    return x, items, dataset


@pytest.fixture(scope="module")
def client():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as cluster:
        with Client(cluster) as client:
            yield client


# Distributed and in-memory fits add the same numbers in another order; near the optimum that can flip
# one SQUAREM accept/reject decision, so they agree to the convergence tolerance (1e-6), not bit for bit.
def test_distributed_fit_equals_the_in_memory_fit(data, client):
    x, items, dataset = data
    memory = fit_irt(x, item_ids=items, progress=False, float32_start=False)  # as Dask fits
    store = DaskResponses(dataset, client)
    distributed = fit_irt(store, progress=False)
    store.close()
    assert distributed.n_iterations == memory.n_iterations
    assert (
        distributed.n_persons == memory.n_persons and distributed.n_responses == memory.n_responses
    )
    np.testing.assert_allclose(distributed.discrimination, memory.discrimination, atol=1e-6, rtol=0)
    np.testing.assert_allclose(distributed.intercept, memory.intercept, atol=1e-6, rtol=0)
    np.testing.assert_allclose(distributed.se_difficulty, memory.se_difficulty, atol=1e-6, rtol=0)
    assert distributed.loglik == pytest.approx(memory.loglik, abs=1e-6)


def test_a_worker_lost_mid_fit_changes_nothing(data, client):
    x, items, dataset = data
    memory = fit_irt(x, item_ids=items, progress=False, standard_errors=False, float32_start=False)
    store = DaskResponses(dataset, client)
    victim = min(client.run(os.getpid).values())
    killed = threading.Event()

    def kill_a_worker(record):
        if record.iteration == 2 and not killed.is_set():
            os.kill(
                victim, signal.SIGKILL
            )  # its partitions are lost; the nanny starts a new worker
            killed.set()

    distributed = fit_irt(store, progress=False, standard_errors=False, on_iteration=kill_a_worker)
    store.close()
    assert killed.is_set()
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # that worker process is really gone
    assert distributed.n_iterations == memory.n_iterations
    np.testing.assert_allclose(distributed.discrimination, memory.discrimination, atol=1e-6, rtol=0)
    assert distributed.loglik == pytest.approx(memory.loglik, abs=1e-6)


def test_bad_values_in_the_dataset_are_named(client, tmp_path):
    import pandas as pd

    pd.DataFrame({"q1": [1.0, 0.0], "q2": [2.0, 1.0]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"column 'q2': value 2.0 is not 0, 1 or null"):
        DaskResponses(tmp_path / "bad.parquet", client)


def test_the_command_line_fits_through_a_scheduler_address(data, client, tmp_path):
    from conftest import run

    from irt_nb.science.model_file import load_model

    x, items, dataset = data
    result = run(
        "irt-nb",
        "fit",
        str(dataset),
        "--scheduler",
        client.scheduler.address,
        "--quiet",
        "--out",
        str(tmp_path / "model.json"),
    )
    assert result.returncode == 0, result.stderr
    model = load_model(tmp_path / "model.json")
    memory = fit_irt(x, item_ids=items, progress=False, standard_errors=False, float32_start=False)
    np.testing.assert_allclose(model.discrimination, memory.discrimination, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    "Polytomous scores (GRM, 0..3 and 1..3 points) of 3000 persons with 20% not answered, in partitions of 400, 1700 and 900 rows."
    import pandas as pd

    rng = np.random.default_rng(21)
    theta = rng.standard_normal(3000)
    slopes, cuts = rng.lognormal(0, 0.25, 8), np.sort(rng.normal(0, 1, (8, 3)), axis=1)
    cuts[6:, 2] = np.inf  # two items with three categories
    latent = slopes[:, None] * theta + rng.logistic(size=(8, len(theta)))  # items × persons
    points = (latent[:, :, None] > (slopes[:, None] * cuts)[:, None, :]).sum(axis=2).T.astype(float)
    points[:, 6:] += 1  # scored 1..3
    points[rng.random(points.shape) < 0.2] = np.nan
    wide = pd.DataFrame(points, columns=[f"s{j}" for j in range(8)])
    wide.insert(0, "student_id", [f"p{n:04d}" for n in range(len(wide))])
    folder = tmp_path_factory.mktemp("scores") / "scores"
    folder.mkdir()
    for number, (start, stop) in enumerate([(0, 400), (400, 2100), (2100, 3000)]):
        wide.iloc[start:stop].to_parquet(folder / f"part-{number}.parquet", index=False)
    return wide, folder


@pytest.mark.parametrize(
    "model, item_models",
    [("grm", {}), ("gpcm", {"s0": "pcm", "s1": "pcm", "s2": "grm"})],
    ids=["grm", "mixed"],
)
def test_distributed_polytomous_fit_equals_the_in_memory_fit(scores, client, model, item_models):
    from irt_nb.science.polytomous import PolytomousSettings, encode_scores, fit_polytomous
    from irt_nb.serving.distributed import DaskScores

    wide, folder = scores
    exact = PolytomousSettings(precision="float64")  # the cluster's E-steps are float64 throughout
    memory = fit_polytomous(
        encode_scores(wide, id_column="student_id"),
        model=model,
        item_models=item_models,
        settings=exact,
    )
    store = DaskScores(folder, client, id_column="student_id")
    assert len(client.who_has(store.partitions)) == 3
    distributed = fit_polytomous(store, model=model, item_models=item_models, settings=exact)
    store.close()
    assert store.categories == memory.categories and distributed.kinds == memory.kinds
    assert (distributed.n_persons, distributed.n_responses) == (
        memory.n_persons,
        memory.n_responses,
    )
    assert distributed.n_iterations == memory.n_iterations
    np.testing.assert_allclose(distributed.vector, memory.vector, atol=1e-8, rtol=0)
    np.testing.assert_allclose(
        distributed.discrimination_se, memory.discrimination_se, atol=1e-8, rtol=0
    )
    np.testing.assert_allclose(
        np.concatenate(distributed.intercepts_se),
        np.concatenate(memory.intercepts_se),
        atol=1e-8,
        rtol=0,
    )
    assert distributed.log_likelihood == pytest.approx(memory.log_likelihood, abs=1e-8)
    assert distributed.data_fingerprint.startswith("sha256-partitions:")


def test_a_non_integer_score_is_named_by_partition_row_and_person(scores, client, tmp_path):
    from irt_nb.serving.distributed import DaskScores

    wide, _ = scores
    bad = wide.iloc[:30].copy()
    bad.loc[bad.index[17], "s3"] = 1.5
    wide.iloc[30:60].to_parquet(tmp_path / "part-0.parquet", index=False)
    bad.to_parquet(tmp_path / "part-1.parquet", index=False)
    with pytest.raises(
        ValueError,
        match=r"column 's3', partition 1, row 18 \(id 'p0017'\): score 1.5 is not an integer",
    ):
        DaskScores(tmp_path, client, id_column="student_id")


def test_the_command_line_fits_polytomous_scores_through_a_scheduler_address(
    scores, client, tmp_path
):
    from conftest import run

    from irt_nb.science.polytomous import (
        PolytomousSettings,
        encode_scores,
        fit_polytomous,
        load_polytomous_model,
    )

    wide, folder = scores
    out = tmp_path / "grm.json"
    result = run(
        "irt-nb",
        "fit",
        str(folder),
        "--model",
        "grm",
        "--scheduler",
        client.scheduler.address,
        "--tol",
        "1e-4",
        "--quadrature",
        "61",
        "--max-iter",
        "2000",
        "--quiet",
        "--out",
        str(out),
    )  # fmt: skip  (PolytomousSettings' defaults)
    assert result.returncode == 0, result.stderr
    assert (
        f"3000 persons x 8 items from 19272 answers on {client.scheduler.address}" in result.stdout
    )
    model = load_polytomous_model(out)
    memory = fit_polytomous(
        encode_scores(wide, id_column="student_id"),
        model="grm",
        settings=PolytomousSettings(precision="float64"),
    )
    np.testing.assert_allclose(model.discrimination, memory.discrimination, atol=1e-8, rtol=0)
    np.testing.assert_allclose(model.discrimination_se, memory.discrimination_se, atol=1e-8, rtol=0)


def test_a_worker_lost_after_loading_the_scores_changes_nothing(scores, client):
    from irt_nb.science.polytomous import PolytomousSettings, fit_polytomous
    from irt_nb.serving.distributed import DaskScores

    _, folder = scores
    settings = PolytomousSettings(precision="float64", standard_errors=False)
    store = DaskScores(folder, client, id_column="student_id")
    before = fit_polytomous(store, model="grm", settings=settings)
    held = {address for places in client.who_has(store.partitions).values() for address in places}
    pids = client.run(os.getpid)
    victim = next(pids[a] for a in sorted(held))
    os.kill(victim, signal.SIGKILL)  # its int16 codes are lost: Dask reads those partitions again
    after = fit_polytomous(store, model="grm", settings=settings)
    store.close()
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    np.testing.assert_allclose(after.vector, before.vector, atol=1e-10, rtol=0)
    assert after.log_likelihood == pytest.approx(before.log_likelihood, abs=1e-8)


def test_scores_missing_between_observed_ones_are_closed_up_with_a_warning(client, tmp_path):
    import pandas as pd

    from irt_nb.serving.distributed import DaskScores

    pd.DataFrame({"id": ["a", "b"], "q1": [1, 2], "q2": [0, 1]}).to_parquet(
        tmp_path / "part-0.parquet"
    )
    pd.DataFrame({"id": ["c", "d"], "q1": [5.0, None], "q2": [1, 0]}).to_parquet(
        tmp_path / "part-1.parquet"
    )
    with pytest.warns(
        UserWarning, match=r"item 'q1': score\(s\) \[3, 4\] never occur between the observed 1..5"
    ):
        store = DaskScores(tmp_path, client, id_column="id")
    assert store.categories == ((1, 2, 5), (0, 1))
    assert [c.tolist() for c in store.category_counts()] == [[1, 1, 1], [2, 2]]
    assert (store.n_persons, store.n_answering, store.n_responses) == (4, 4, 7)
    store.close()
