"""Monitoring a served model: drift from outcomes on a real server (2 workers), metrics across workers,
state that survives a restart, the PostgreSQL store, training-serving skew, numerical stability and a
performance check against a plain reference implementation."""

import json
import re
import threading
import time
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
from conftest import ROOT, run
from servers import ApiServer, PostgresServer

from irt_nb.science.calculation import fit_irt
from irt_nb.science.item_models import probability_correct
from irt_nb.science.model_file import ITEM_FIELDS, load_model, save_model
from irt_nb.science.pipeline import calibrate, score_responses
from irt_nb.science.preparation import create_sample_database
from irt_nb.science.scoring import score_persons
from irt_nb.serving.monitoring import DriftSettings, OutcomeStore


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitored")
    db = create_sample_database(folder / "sample.sqlite", seed=12, n_students=2000)
    model = calibrate(f"sqlite:///{db}", exam="2026-spring", subject="math", progress=False).model
    return save_model(model, folder / "model.json"), db


def post(base, path, body):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=20) as reply:
        return json.loads(reply.read())


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=20) as reply:
        return reply.read().decode()


def outcomes_stream(model, leaked: str, shift: float, n: int, seed: int) -> list[dict]:
    "Outcomes of calibrated students on every item, answered as the model says except `leaked` (easier by `shift`)."
    rng = np.random.default_rng(seed)
    students = model.abilities.ids()
    chosen = rng.integers(0, len(students), n)
    items = rng.integers(0, len(model.item_ids), n)
    theta = np.array([model.abilities.get(students[i])[0] for i in chosen])
    b = model.difficulty[items] - np.where(np.array(model.item_ids)[items] == leaked, shift, 0.0)
    p = 1 / (1 + np.exp(-model.discrimination[items] * (theta - b)))
    y = (rng.random(n) < p).astype(int)
    return [
        {"student_id": students[c], "item_id": model.item_ids[j], "correct": int(v)}
        for c, j, v in zip(chosen, items, y, strict=True)
    ]


def test_a_drifting_item_is_flagged_while_the_server_runs_and_after_a_restart(
    served_model, tmp_path
):
    path, _ = served_model
    model = load_model(path)
    leaked = model.item_ids[5]
    store = f"sqlite:///{tmp_path / 'monitoring.sqlite'}"
    options = ("--workers", "2", "--log-level", "warning", "--outcomes-store", store)
    stream = outcomes_stream(model, leaked, shift=1.5, n=30 * 400, seed=1)  # 400 outcomes per item
    found_after = None
    with ApiServer(path, *options) as server:
        sent_to_leaked = 0
        for start in range(0, len(stream), 200):
            batch = stream[start : start + 200]
            reply = post(server.base, "/v1/outcomes", {"outcomes": batch})
            sent_to_leaked += sum(o["item_id"] == leaked for o in batch)
            if leaked in reply["flagged"] and found_after is None:
                found_after = sent_to_leaked
        drift = json.loads(get(server.base, "/v1/drift"))
        metrics = get(server.base, "/metrics")
    print(
        f"leaked item flagged after {found_after} of its outcomes; flagged: {[i['item_id'] for i in drift['flagged']]}"
    )
    assert found_after is not None and found_after <= 150
    assert [i["item_id"] for i in drift["flagged"]] == [leaked] and drift["flagged"][0][
        "direction"
    ] == "easier"
    assert drift["items_monitored"] == 30
    assert "irt_nb_items_drifting 1.0" in metrics
    cusum = re.search(
        rf'irt_nb_item_drift_cusum{{direction="easier",item_id="{leaked}"}} (\S+)', metrics
    )
    assert cusum and float(cusum[1]) > 25
    with ApiServer(
        path, *options
    ) as restarted:  # the figures live in the store, not in the workers
        again = json.loads(get(restarted.base, "/v1/drift"))
        assert [i["item_id"] for i in again["flagged"]] == [leaked]
        assert sum(1 for _ in stream) == sum(
            int(m)
            for m in re.findall(r'irt_nb_outcomes_total{model_version="[0-9a-f]+"} (\d+)', metrics)
        )


def test_metrics_add_up_across_workers(served_model):
    path, _ = served_model
    model = load_model(path)
    with ApiServer(path, "--workers", "2", "--log-level", "warning") as server:
        body = {"theta": 0.2, "items": model.item_ids[:3]}
        pids = set()

        def send(n):
            for _ in range(n):
                post(server.base, "/v1/probabilities", body)

        threads = [threading.Thread(target=send, args=(75,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bad = urllib.request.Request(
            server.base + "/v1/probabilities",
            data=b'{"theta": NaN}',
            headers={"content-type": "application/json"},
        )
        for _ in range(7):
            try:
                urllib.request.urlopen(bad, timeout=10)
            except urllib.error.HTTPError:
                pass
        workers = {int(m) for m in re.findall(r'pid="(\d+)"', get(server.base, "/metrics"))}
        metrics = get(server.base, "/metrics")
        pids |= workers
    counted = re.search(
        r'irt_nb_requests_total{route="/v1/probabilities",status="200"} ([\d.]+)', metrics
    )
    assert counted and float(counted[1]) == 300
    assert re.search(r'irt_nb_refusals_total{reason="nan"} 7\.0', metrics)
    assert re.search(r'irt_nb_request_seconds_count{route="/v1/probabilities"} 307\.0', metrics)
    assert (
        re.search(r"irt_nb_model_age_seconds \d", metrics)
        and "irt_nb_model_info{version=" in metrics
    )


def test_the_postgresql_store_flags_the_same_and_loses_no_concurrent_outcome():
    with PostgresServer() as pg:
        store = OutcomeStore(pg.url, DriftSettings())
        items = [f"i{j}" for j in range(4)]

        def feed(seed):
            r = np.random.default_rng(seed)
            for _ in range(25):
                chosen = r.integers(0, 4, 40)
                y = (r.random(40) < np.where(chosen == 2, 0.85, 0.5)).astype(float)
                store.record("v1", [items[c] for c in chosen], y, np.full(40, 0.5))

        threads = [threading.Thread(target=feed, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        table = store.drift("v1")
        assert int(table.n.sum()) == 4 * 25 * 40 and int(table.n_window.sum()) == 4 * 25 * 40
        assert table.item_id[table.flagged].tolist() == ["i2"]


def test_batch_scoring_and_the_api_give_the_same_answers(served_model, tmp_path):
    "Training-serving skew: the same answers through `score_responses` and through the API."
    path, db = served_model
    model = load_model(path)
    scores = score_responses(model, f"sqlite:///{db}", exam="2026-spring", subject="math").table
    scores = scores.set_index("student_id")
    import sqlite3

    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT student_id, item_id, correct, answered_at FROM responses WHERE exam = '2026-spring' AND subject = 'math' ORDER BY answered_at"
        ).fetchall()
    first = {}
    for student, item, correct, _ in rows:
        first.setdefault(student, {}).setdefault(
            item, 1 if correct.strip().lower() in ("1", "true", "correct") else 0
        )
    with ApiServer(path, "--workers", "2", "--log-level", "warning") as server:
        for student in sorted(first)[:40]:
            answered = post(server.base, "/v1/abilities", {"responses": first[student]})
            assert abs(answered["theta"] - scores.loc[student, "theta"]) <= 1e-12
            assert abs(answered["se"] - scores.loc[student, "se"]) <= 1e-12
            served = post(
                server.base,
                "/v1/probabilities",
                {"theta": answered["theta"], "items": model.item_ids},
            )
            direct = model.probability(np.array([answered["theta"]]))[0]
            assert (
                np.max(np.abs([p["probability"] for p in served["probabilities"]] - direct))
                <= 1e-12
            )


def test_extreme_but_valid_inputs_give_finite_answers():
    rng = np.random.default_rng(4)
    n_items = 10_000
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1.5, n_items)
    for theta in (-40.0, 40.0):
        p = probability_correct(np.array([theta]), a, b)
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    small = fit_irt((rng.random((500, 20)) < 0.6).astype(float), progress=False)
    big = replace(
        small,
        item_ids=[f"q{j}" for j in range(n_items)],
        **{f: np.resize(getattr(small, f), n_items) for f in (*ITEM_FIELDS, "fixed")},
    )
    patterns = np.vstack([np.zeros(n_items), np.ones(n_items), rng.integers(0, 2, n_items)]).astype(
        float
    )
    for method in ("eap", "map", "ml"):
        scored = score_persons(big, patterns, method)
        assert np.isfinite(scored.theta).all() and np.isfinite(scored.se).all(), method
    all_wrong_item = (rng.random((800, 6)) < 0.6).astype(float)
    all_wrong_item[:, 2] = 0
    with pytest.warns(UserWarning):
        fitted = fit_irt(all_wrong_item, progress=False)
    assert np.isfinite(fitted.item_params).all() and np.isfinite(fitted.loglik)


def reference_em(x: np.ndarray, iterations: int) -> np.ndarray:
    "A plain 2PL EM (fixed 21-point grid, one Newton step per item, no acceleration): the yardstick."
    nodes = np.linspace(-4, 4, 21)
    weights = np.exp(-(nodes**2) / 2)
    weights /= weights.sum()
    a, d = np.ones(x.shape[1]), np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(np.outer(nodes, a) + d)))
        log_like = x @ np.log(p).T + (1 - x) @ np.log1p(-p).T + np.log(weights)
        post = np.exp(log_like - log_like.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        n_k, r_k = post.sum(axis=0), post.T @ x
        for j in range(x.shape[1]):
            pj = p[:, j]
            g = np.array([((r_k[:, j] - n_k * pj) * nodes).sum(), (r_k[:, j] - n_k * pj).sum()])
            w = n_k * pj * (1 - pj)
            h = np.array([[(w * nodes**2).sum(), (w * nodes).sum()], [(w * nodes).sum(), w.sum()]])
            a[j], d[j] = np.array([a[j], d[j]]) + np.linalg.solve(h, g)
    return np.column_stack([a, d])


def test_the_engine_keeps_its_speed_against_a_plain_reference():
    "A short check on each CI run: fit time over a plain EM's in the same run, against the recorded ratio."
    recorded = json.loads((ROOT / "tests" / "performance_baseline.json").read_text())
    rng = np.random.default_rng(5)
    theta = rng.standard_normal(20_000)
    a, b = rng.lognormal(0, 0.3, 40), rng.normal(0, 1, 40)
    x = (rng.random((20_000, 40)) < probability_correct(theta, a, b)).astype(float)
    timings = {"engine": [], "reference": []}
    for _ in range(3):
        started = time.perf_counter()
        fit_irt(x, progress=False)
        timings["engine"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reference_em(x, recorded["reference_iterations"])
        timings["reference"].append(time.perf_counter() - started)
    ratio = float(np.median(timings["engine"]) / np.median(timings["reference"]))
    print(
        f"engine / reference: {ratio:.2f} (recorded {recorded['ratio']:.2f}, fails above {recorded['ratio'] * recorded['tolerance']:.2f})"
    )
    assert ratio <= recorded["ratio"] * recorded["tolerance"]


def test_held_out_quality_predicts_the_next_terms_outcomes(served_model, tmp_path):
    "Offline and online metrics agree, and what a term of staleness costs: the spring model on autumn's answers."
    from irt_nb.serving.registry import holdout_metrics

    path, db = served_model
    model = load_model(path)
    spring = calibrate(f"sqlite:///{db}", exam="2026-spring", subject="math", progress=False)
    offline = holdout_metrics(spring.matrix.codes)["holdout_logloss"]
    autumn = calibrate(f"sqlite:///{db}", exam="2026-autumn", subject="math", progress=False).matrix
    store = OutcomeStore(f"sqlite:///{tmp_path / 'online.sqlite'}")
    position = {item: j for j, item in enumerate(model.item_ids)}
    rows, cols = np.nonzero(autumn.codes >= 0)
    keep = np.array([str(autumn.item_ids[c]) in position for c in cols]) & np.array(
        [model.abilities.get(str(autumn.person_ids[r])) is not None for r in rows]
    )
    rows, cols = rows[keep], cols[keep]
    theta = np.array([model.abilities.get(str(autumn.person_ids[r]))[0] for r in rows])
    j = np.array([position[str(autumn.item_ids[c])] for c in cols])
    p = model.guessing[j] + (1 - model.guessing[j]) / (
        1 + np.exp(-(model.discrimination[j] * theta + model.intercept[j]))
    )
    store.record("spring", [model.item_ids[k] for k in j], autumn.codes[rows, cols], p)
    table = store.drift("spring")
    online = float((table.logloss * table.n_window).sum() / table.n_window.sum())
    print(
        f"held-out log-loss at calibration {offline:.4f}; log-loss on next term's outcomes {online:.4f}"
    )
    assert len(rows) > 10_000 and abs(online - offline) < 0.05


def _terms(n_terms: int = 4, n_students: int = 3000, n_items: int = 30, seed: int = 31):
    "Successive terms with planted change: 8 items drift 0.4 in difficulty a term, each cohort 0.15 stronger."
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0, 0.3, n_items), rng.normal(0, 1, n_items)
    drifting, direction = rng.choice(n_items, 8, replace=False), rng.choice([-1.0, 1.0], 8)
    terms = []
    for t in range(n_terms):
        difficulty = b.copy()
        difficulty[drifting] += 0.4 * t * direction
        ability = rng.normal(0.15 * t, 1, (n_students, 1))
        p = 1 / (1 + np.exp(-a * (ability - difficulty)))
        terms.append((rng.random(p.shape) < p).astype(np.int8))
    return terms


def test_offline_and_next_term_log_loss_rank_models_alike_and_staleness_costs(tmp_path):
    """M2/M4: models 0, 1 and 2 terms old and a mis-keyed one, ranked by held-out log-loss on the
    latest term and by the outcome store's log-loss on the next term's answers; the ranks agree and
    each term of age costs log-loss."""
    from irt_nb.serving.registry import predictive_logloss, split_answers

    first, second, latest, following = _terms()
    training, *_ = split_answers(latest, 0.1, 0)
    mis_keyed = training.copy()
    answered = mis_keyed[:, :10] >= 0
    mis_keyed[:, :10][answered] = 1 - mis_keyed[:, :10][answered]  # a wrong key on 10 items
    models = {
        "fresh": fit_irt(training, progress=False),
        "1 term old": fit_irt(second, progress=False),
        "2 terms old": fit_irt(first, progress=False),
    }
    with pytest.warns(UserWarning, match="negative discrimination"):  # the fit says so, too
        models["mis-keyed"] = fit_irt(mis_keyed, progress=False)
    offline = {name: predictive_logloss(m, latest, 0.1, 0) for name, m in models.items()}
    # online: what the served model predicted for next term's answers, as the outcome store records it
    store = OutcomeStore(f"sqlite:///{tmp_path / 'outcomes.sqlite'}")
    before, rows, cols, held = split_answers(following, 0.5, 1)
    online = {}
    for name, model in models.items():
        theta = score_persons(model, before).theta
        p = model.probability(theta)[rows[held], cols[held]]
        store.record(
            name, [model.item_ids[j] for j in cols[held]], following[rows[held], cols[held]], p
        )
        table = store.drift(name)
        online[name] = float((table.logloss * table.n_window).sum() / table.n_window.sum())
    print({name: (round(offline[name], 4), round(online[name], 4)) for name in models})
    by_offline, by_online = sorted(models, key=offline.get), sorted(models, key=online.get)
    assert by_offline == by_online == ["fresh", "1 term old", "2 terms old", "mis-keyed"]
    one_term, two_terms = (online[age] - online["fresh"] for age in ("1 term old", "2 terms old"))
    assert 0.004 < one_term < two_terms < 0.06, (one_term, two_terms)  # the cost of staleness


def test_estimates_are_stable_to_the_fits_settings(served_model):
    "The settings a user may pick (quadrature points, tolerance) do not change the answer beyond noise."
    _, db = served_model
    source = {
        "source": f"sqlite:///{db}",
        "exam": "2026-spring",
        "subject": "math",
        "progress": False,
    }
    reference = calibrate(**source, n_quadrature=101, tol_param=1e-8).model
    for options in ({"n_quadrature": 41}, {"n_quadrature": 61}, {"tol_param": 1e-5}):
        fitted = calibrate(**source, **options).model
        assert np.max(np.abs(fitted.difficulty - reference.difficulty)) < 0.01, options
        assert np.max(np.abs(fitted.discrimination - reference.discrimination)) < 0.01, options


def test_the_monitor_command_alerts_on_drift_and_age_and_writes_its_report(served_model, tmp_path):
    path, db = served_model
    spring = (str(path), f"sqlite:///{db}", "--exam", "2026-spring", "--subject", "math")
    steady = run("irt-nb", "monitor", *spring)
    assert steady.returncode == 0 and "no threshold crossed" in steady.stdout, steady.stderr
    stale = run("irt-nb", "monitor", *spring, "--max-age-days", "0")
    assert stale.returncode == 1 and "days old (limit 0)" in stale.stdout
    import sqlite3

    import pandas as pd

    model = load_model(path)
    with sqlite3.connect(db) as con:
        answers = pd.read_sql(
            "SELECT student_id, item_id, correct FROM responses WHERE exam = '2026-spring' AND subject = 'math'",
            con,
        )
    leaked = model.item_ids[3]
    answers.loc[answers.item_id == leaked, "correct"] = "1"  # everybody now gets it right
    answers.to_csv(tmp_path / "leaked.csv", index=False)
    alert = run(
        "irt-nb",
        "monitor",
        str(path),
        str(tmp_path / "leaked.csv"),
        "--report",
        str(tmp_path / "report"),
    )
    assert alert.returncode == 1 and f"item {leaked} drifted" in alert.stdout, (
        alert.stdout + alert.stderr
    )
    html = (tmp_path / "report" / "monitoring_report.html").read_text()
    assert html.count("data:image/png;base64") >= 2 and leaked in html
    assert json.loads((tmp_path / "report" / "monitoring.json").read_text())["crossed"]


def test_an_outcome_by_student_id_needs_the_students_scope_and_reveals_no_ids(
    served_model, tmp_path
):
    "A `write` key cannot find out which students exist: by id it gets 403 whether or not the id is known."
    from starlette.testclient import TestClient

    from irt_nb.serving.api.app import AppParts, create_app
    from irt_nb.serving.auth import KeyStore

    path, _ = served_model
    model = load_model(path)
    keys = KeyStore(tmp_path / "keys.json")
    _, writer = keys.create("writer", ["write"])
    _, both = keys.create("tutor", ["write", "students"])
    outcomes = OutcomeStore(f"sqlite:///{tmp_path / 'outcomes.sqlite'}")
    client = TestClient(create_app(path, AppParts(keys=keys, outcomes=outcomes)))
    known, item = model.abilities.ids()[0], model.item_ids[0]

    def send(key, student):
        body = {"student_id": student, "item_id": item, "correct": 1}
        return client.post("/v1/outcomes", json=body, headers={"authorization": f"Bearer {key}"})

    assert [send(writer, s).status_code for s in (known, "nobody-such")] == [403, 403]
    assert "'students' scope" in send(writer, known).json()["detail"][0]
    assert [send(both, s).status_code for s in (known, "nobody-such")] == [200, 404]
    with_theta = {"theta": 0.3, "item_id": item, "correct": 0}
    reply = client.post(
        "/v1/outcomes", json=with_theta, headers={"authorization": f"Bearer {writer}"}
    )
    assert reply.status_code == 200 and reply.json()["recorded"] == 1


def _draw_scores(model, theta, seed, intercepts=None):
    "A wide frame of scores (each item's own) drawn from a polytomous `model`, some items' intercepts replaced."
    import pandas as pd

    from irt_nb.science.polytomous import gpcm_probabilities, grm_probabilities

    rng, frame = np.random.default_rng(seed), {"student": [f"s{i}" for i in range(len(theta))]}
    for j, item in enumerate(model.item_ids):
        d = np.asarray((intercepts or {}).get(item, model.intercepts[j]))
        kind = grm_probabilities if model.kinds[j] == "grm" else gpcm_probabilities
        p = kind(theta, model.discrimination[j], d)[0]
        codes = (rng.random(len(theta))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
        frame[item] = np.array(model.categories[j])[codes]
    return pd.DataFrame(frame)


def test_the_monitor_command_checks_a_polytomous_model_on_the_items_own_scores(tmp_path):
    "irt-nb fit --model grm, then irt-nb monitor: exit 0 on answers drawn from the model, 1 on a leaked item, 2 on bad input."
    import pandas as pd

    from irt_nb.science.polytomous import KINDS, load_polytomous_model

    rng = np.random.default_rng(31)
    ability, ratings = rng.normal(size=2500), {"student": [f"c{i}" for i in range(2500)]}
    for j in range(8):  # a 1-5 agreement scale, and two 0-3 partial-credit items
        kind, d = ("grm", [2.0, 0.7, -0.6, -1.9]) if j < 6 else ("gpcm", [0.8, 0.4, -0.7])
        p = KINDS[kind](ability, 0.9 + 0.15 * j, np.array(d))[0]
        ratings[f"q{j}"] = (kind == "grm") + (rng.random(2500)[:, None] > np.cumsum(p, axis=1)).sum(
            axis=1
        )
    pd.DataFrame(ratings).to_csv(tmp_path / "ratings.csv", index=False)
    model_file = tmp_path / "rated.json"
    fitted = run("irt-nb", "fit", str(tmp_path / "ratings.csv"), "--wide", "--model", "grm",
                 "--item-model", "q6=gpcm", "--item-model", "q7=gpcm", "--out", str(model_file))  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    model = load_polytomous_model(model_file)
    assert model.categories[0] == (1, 2, 3, 4, 5) and model.kinds[6:] == ("gpcm", "gpcm")
    theta = np.random.default_rng(32).normal(size=2000)
    _draw_scores(model, theta, 33).to_csv(tmp_path / "steady.csv", index=False)
    easier = {"q2": model.intercepts[2] + 1.0}  # q2's thresholds fall by 1/a
    _draw_scores(model, theta, 33, easier).to_csv(tmp_path / "leaked.csv", index=False)

    steady = run("irt-nb", "monitor", str(model_file), str(tmp_path / "steady.csv"), "--wide")
    assert steady.returncode == 0 and steady.stdout.endswith("no threshold crossed\n"), (
        steady.stdout
    )
    stale = run("irt-nb", "monitor", str(model_file), str(tmp_path / "steady.csv"), "--wide",
                "--max-age-days", "0")  # fmt: skip
    assert stale.returncode == 1 and "ALERT the model is 0 days old (limit 0)" in stale.stdout
    leaked = run("irt-nb", "monitor", str(model_file), str(tmp_path / "leaked.csv"), "--wide")
    alerts = [line for line in leaked.stdout.splitlines() if line.startswith("ALERT")]
    assert (
        leaked.returncode == 1 and alerts and all(a.startswith("ALERT item q2 ") for a in alerts)
    ), leaked.stdout
    moved = next(a for a in alerts if " moved: location " in a)
    new, was = (float(x) for x in re.findall(r"[-+]\d+\.\d+", moved))
    shift, expected = new - was, -1.0 / model.discrimination[2]
    print(f"q2 moved {shift:+.3f}; the generator moved its thresholds {expected:+.3f}")
    assert abs(shift - expected) < 0.15

    report = run("irt-nb", "monitor", str(model_file), str(tmp_path / "leaked.csv"), "--wide",
                 "--report", str(tmp_path / "report"))  # fmt: skip
    assert report.returncode == 1 and "ALERT item q2 drifted" in report.stdout, report.stderr
    record = json.loads((tmp_path / "report" / "monitoring.json").read_text())
    assert [c.split(" ")[1] for c in record["crossed"]] == ["q2"] * 3
    assert record["items"][2]["categories_drifted"] and record["items"][2]["in_theta"] is False
    html = (tmp_path / "report" / "monitoring_report.html").read_text()
    assert html.count("data:image/png;base64") >= 2 and "polytomous (mixed)" in html

    bad = _draw_scores(model, theta[:20], 34)
    bad.loc[3, "q0"] = 6  # not on the 1-5 scale
    bad.to_csv(tmp_path / "bad.csv", index=False)
    refused = run("irt-nb", "monitor", str(model_file), str(tmp_path / "bad.csv"), "--wide")
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        "column 'q0', row 4 (id 's3'): score '6' is not one of the model's scores" in refused.stderr
    )
    missing = run("irt-nb", "monitor", str(model_file), str(tmp_path / "nowhere.csv"), "--wide")
    assert missing.returncode == 2 and "nowhere.csv" in missing.stderr, missing.stderr
