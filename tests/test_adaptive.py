"""Adaptive practice and testing: the engine's numbers, and sessions against a real `irt-nb serve`.

The engine is checked against direct computations (batch EAP, item information), exposure and
content targets in seeded simulations. The server keeps its student store in SQLite beside the model
(and in PostgreSQL when given a URL): answers sent in parallel for one student all count, and a
student's state survives a restart.
"""

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from servers import ApiServer, PostgresServer

from irt_nb.science.adaptive import (
    AdaptiveEngine,
    StoppingRule,
    bank_model,
    select_items,
    simulate,
    sympson_hetter,
)
from irt_nb.science.model_file import save_model
from irt_nb.science.scoring import score_persons
from irt_nb.serving.student_store import StudentStore


def _bank(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    return bank_model(
        [f"Q{j:04d}" for j in range(n)], rng.lognormal(0, 0.3, n), rng.normal(0, 1.2, n)
    )


def test_the_posterior_after_n_answers_is_batch_eap_scoring_of_them():
    bank = _bank(300)
    engine = AdaptiveEngine(bank)
    rng = np.random.default_rng(1)
    state, answers = engine.start(), np.full((1, 300), np.nan)
    for j in rng.choice(300, 40, replace=False):
        right = int(rng.random() < 0.55)
        engine.record(state, bank.item_ids[j], right)
        answers[0, j] = right
        batch = score_persons(bank, answers)
        theta, se = engine.estimate(state)
        assert abs(theta - batch.theta[0]) < 1e-10 and abs(se - batch.se[0]) < 1e-10
    # MAP and ML agree with the batch scorer's too (once both answers kinds are present)
    for method in ("map", "ml"):
        theta, se = engine.estimate(state, method)
        batch = score_persons(bank, answers, method)
        assert abs(theta - batch.theta[0]) < 1e-6 and abs(se - batch.se[0]) < 1e-6


def test_maximum_information_picks_the_most_informative_unseen_item_in_the_pool():
    bank = _bank()
    engine = AdaptiveEngine(bank)
    state = engine.start()
    for item, right in (("Q0001", 1), ("Q0002", 1), ("Q0003", 0)):
        engine.record(state, item, right)
    theta, _ = engine.estimate(state)
    p = 1 / (1 + np.exp(-bank.discrimination * (theta - bank.difficulty)))
    info = bank.discrimination**2 * p * (1 - p)
    seen = [bank.item_ids.index(i) for i in state.items]
    info[seen] = -np.inf
    best = select_items(engine, state, "mfi", n=3)
    order = np.argsort(-info)[:3]
    assert [c.item_id for c in best] == [bank.item_ids[j] for j in order]
    assert np.allclose([c.information for c in best], info[order])
    pool = [bank.item_ids[j] for j in range(100, 200)]
    in_pool = select_items(engine, state, "mfi", pool=pool, exclude=[pool[0]])[0]
    j = 100 + 1 + int(np.argmax(info[101:200]))
    assert in_pool.item_id == bank.item_ids[j]
    near = select_items(engine, state, "target", target=0.7)[0]
    assert abs(near.p_correct - 0.7) < 0.01


def test_exposure_control_keeps_every_item_under_its_ceiling():
    bank = _bank(400, seed=2)
    engine = AdaptiveEngine(bank)
    rule = StoppingRule(max_length=10)
    rng = np.random.default_rng(3)
    free = simulate(engine, rng.standard_normal(600), rule, seed=1).exposure()
    K = sympson_hetter(engine, rng.standard_normal(600), rule, ceiling=0.25)
    assert min(K.values()) < 0.5  # the most informative items are held back
    for seed in (4, 5):
        controlled = simulate(engine, rng.standard_normal(600), rule, seed=seed).exposure()
        assert controlled.max() <= 0.25, controlled.max()
    assert free.max() > 0.9  # without control, the first item goes to everyone
    engine.exposure = np.ones(len(engine.ids))
    spread = simulate(engine, rng.standard_normal(600), rule, "randomesque", seed=6, k=8).exposure()
    assert spread.max() < free.max() - 0.3  # randomesque dilutes exposure as well


def test_content_balancing_meets_the_configured_proportions():
    bank = _bank(600, seed=7)
    areas = {
        item: ["algebra", "geometry", "statistics"][j % 3] for j, item in enumerate(bank.item_ids)
    }
    engine = AdaptiveEngine(bank, content=areas)
    targets = {"algebra": 0.5, "geometry": 0.3, "statistics": 0.2}
    sim = simulate(
        engine, np.random.default_rng(8).standard_normal(40), StoppingRule(max_length=20),
        seed=9, content_targets=targets,
    )  # fmt: skip
    counts = sim.steps.assign(area=sim.steps.item_id.map(areas)).groupby(["student", "area"]).size()
    per_student = counts.unstack(fill_value=0)
    for area, share in targets.items():  # every student, within one item of the target
        assert (abs(per_student[area] - share * 20) <= 1).all(), per_student[area].describe()


def test_stopping_rules_end_a_session_when_they_should():
    engine = AdaptiveEngine(_bank(500, seed=10))
    rng = np.random.default_rng(11)
    by_se = simulate(
        engine, rng.standard_normal(50), StoppingRule(se_below=0.35, max_length=60), seed=1
    )
    assert (by_se.stops.se < 0.35).all() and by_se.stops.reason.str.startswith(
        "standard error"
    ).all()
    cut = simulate(engine, np.array([-2.0, 2.0]), StoppingRule(cut=0.0, max_length=60), seed=2)
    assert cut.stops.reason.str.startswith("classified").all()
    assert (np.sign(cut.stops.theta_hat) == np.sign(cut.stops.true_theta)).all()
    assert cut.stops.length.max() < by_se.stops.length.mean()  # far from the cut: decided early


def test_accuracy_improves_with_test_length_and_beats_a_fixed_form():
    bank = _bank(500, seed=12)
    engine = AdaptiveEngine(bank)
    truth = np.random.default_rng(13).normal(0, 1.2, 200)
    rule = StoppingRule(max_length=20)
    adaptive = simulate(engine, truth, rule, "mfi", seed=1).accuracy()
    form = list(np.random.default_rng(14).choice(bank.item_ids, 20, replace=False))
    fixed = simulate(engine, truth, rule, form=form, seed=1).accuracy()
    assert adaptive.rmse.iloc[-1] < adaptive.rmse.iloc[4] < adaptive.rmse.iloc[0]
    assert adaptive.rmse.iloc[-1] < 0.8 * fixed.rmse.iloc[-1]


def test_a_polytomous_engine_runs_the_student_stores_path(tmp_path):
    "What the API does with an engine built from a PolytomousModel: scores stored, read back, same ability."
    from irt_nb.science.polytomous_adaptive import polytomous_bank_model

    rng = np.random.default_rng(20)
    model = polytomous_bank_model(
        [f"R{j}" for j in range(12)], rng.uniform(0.8, 2.0, 12),
        [np.sort(rng.normal(0, 1, 4))[::-1] for _ in range(12)], categories=[(1, 2, 3, 4, 5)] * 12,
    )  # fmt: skip
    engine = AdaptiveEngine(model)
    store = StudentStore(str(tmp_path / "students.sqlite"))
    answers = [("R0", 5), ("R3", 2), ("R7", 4)]
    state = store.record("v", "ana", answers, engine, engine.start)
    back = store.load("v", "ana")
    assert back.items == ["R0", "R3", "R7"] and back.responses == [5, 2, 4]
    direct = engine.start()
    for item, score in answers:
        engine.record(direct, item, score)
    for method in ("eap", "map", "ml"):
        assert engine.estimate(back, method) == pytest.approx(
            engine.estimate(direct, method), abs=1e-12
        )
    assert engine.estimate(back) == pytest.approx(engine.estimate(state), abs=1e-12)
    choice = select_items(engine, back, "pwi")[0]
    assert choice.item_id not in back.items and choice.p_correct is None
    assert 1 < choice.expected_score < 5
    with pytest.raises(
        ValueError, match=r"item 'R1': score 6 is not one of its scores \[1, 2, 3, 4, 5\]"
    ):
        store.record("v", "ana", [("R1", 6)], engine, engine.start)
    assert store.load("v", "ana").n_answers == 3  # the refused answer left the stored state alone


def _post(base: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(base: str, path: str, method: str = "GET") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(base + path, method=method), timeout=30
        ) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def bank_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adaptive")
    bank = _bank(400, seed=15)
    path = save_model(bank, folder / "bank.json")
    pd.DataFrame({"item_id": bank.item_ids, "topic": ["a", "b"] * 200}).to_csv(
        folder / "topics.csv", index=False
    )
    return folder, path, bank


def _session(base: str, student: str, truth: float, rng, n: int = 15, **request) -> dict:
    "An adaptive session as a client runs it: next item, answer, repeat."
    engine = AdaptiveEngine(_bank(400, seed=15))
    for _ in range(n):
        status, reply = _post(base, "/v1/next-item", {"student_id": student, **request})
        assert status == 200, reply
        if reply["done"]:
            return reply
        item = reply["items"][0]["item_id"]
        p = engine.kind.probability(truth, engine.rows()[[engine.index[item]]])[0, 0]
        status, reply = _post(
            base,
            "/v1/answers",
            {
                "student_id": student,
                "answers": [{"item_id": item, "correct": int(rng.random() < p)}],
            },
        )
        assert status == 200, reply
    return reply


def test_a_session_against_the_server_converges_and_survives_a_restart(bank_file):
    folder, path, bank = bank_file
    rng = np.random.default_rng(16)
    options = (
        "--item-content",
        str(folder / "topics.csv"),
        "--workers",
        "2",
        "--log-level",
        "warning",
    )
    with ApiServer(path, *options) as server:
        last = _session(server.base, "ana", 1.0, rng, 25)
        assert (
            abs(last["theta"] - 1.0) < 2.5 * last["se"]
            and last["se"] < 0.45
            and last["n_answers"] == 25
        )
        status, reply = _post(
            server.base, "/v1/next-item", {"student_id": "ana", "stop": {"max_length": 25}}
        )
        assert status == 200 and reply["done"] and "maximum length" in reply["stop_reason"]
        status, reply = _post(
            server.base, "/v1/next-item",
            {"student_id": "ana", "n": 4, "selector": "kl", "content": {"a": 0.5, "b": 0.5}},
        )  # fmt: skip
        assert (
            status == 200 and len(reply["items"]) == 4 and all(i["reason"] for i in reply["items"])
        )
        status, before = _get(server.base, "/v1/students/ana")
        assert status == 200 and before["n_answers"] == 25 and len(before["answers"]) == 25
        # I5: the served ability step by step, equal to the state's and to /v1/abilities' scoring
        status, explained = _get(server.base, "/v1/students/ana/explain")
        assert status == 200 and explained["prior"]["source"] == "group prior", explained
        assert [a["item_id"] for a in explained["answers"]] == [
            a["item_id"] for a in before["answers"]
        ]
        assert explained["theta"] == pytest.approx(before["theta"], abs=1e-10)
        responses = {a["item_id"]: a["correct"] for a in before["answers"]}
        status, scored = _post(server.base, "/v1/abilities", {"responses": responses})
        assert status == 200
        assert (scored["theta"], scored["se"]) == (
            pytest.approx(explained["theta"], abs=1e-10),
            pytest.approx(explained["se"], abs=1e-10),
        )
        terms = np.array([a["log_likelihood"] for a in explained["answers"]])
        log_post = np.array(explained["log_prior"]) + terms.sum(axis=0)
        posterior = np.exp(log_post - log_post.max())
        np.testing.assert_allclose(posterior / posterior.sum(), explained["posterior"], atol=1e-12)
        assert np.dot(explained["nodes"], explained["posterior"]) == pytest.approx(
            explained["theta"], abs=1e-12
        )
        assert _get(server.base, "/v1/students/nobody/explain")[0] == 404
        assert (folder / "students.sqlite").exists()
    with ApiServer(path, *options) as server:  # a new process: the state is read back
        status, after = _get(server.base, "/v1/students/ana")
        assert status == 200 and after["theta"] == before["theta"] and after["n_answers"] == 25
        status, erased = _get(server.base, "/v1/students/ana", "DELETE")
        assert status == 200 and erased["deleted"] == {"states": 1, "answers": 25}
        assert _get(server.base, "/v1/students/ana")[0] == 404


def test_bad_requests_say_what_and_where(bank_file):
    folder, path, _ = bank_file
    with ApiServer(
        path, "--item-content", str(folder / "topics.csv"), "--log-level", "warning"
    ) as server:
        cases = [
            ("/v1/answers", {"student_id": "x", "answers": [{"item_id": "Q0001", "correct": 2}]}, 422, "$.answers[0].correct"),
            ("/v1/answers", {"student_id": "x", "answers": [{"item_id": "nope", "correct": 1}]}, 422, "$.answers[0].item_id"),
            ("/v1/next-item", {"student_id": "x", "pool": ["Q0001", "zzz"]}, 422, "$.pool[1]"),
            ("/v1/next-item", {"student_id": "x", "content": {"c": 1.0}}, 422, "$.content.c"),
            ("/v1/next-item", {"student_id": "x", "selector": "best"}, 422, "$.selector"),
            ("/v1/next-item", {"student_id": "x", "group": "nobody"}, 422, "$.group"),
        ]  # fmt: skip
        for path_, body, status, where in cases:
            got, reply = _post(server.base, path_, body)
            assert got == status and reply["path"] == where, (body, reply)


def _parallel_answers(base: str, bank, student: str, n: int = 60) -> list[tuple[str, int]]:
    "n answers for one student sent at once from 12 threads; the answers sent."
    rng = np.random.default_rng(17)
    answers = [(bank.item_ids[j], int(rng.random() < 0.5)) for j in range(n)]

    def send(pair):
        status, reply = _post(
            base,
            "/v1/answers",
            {"student_id": student, "answers": [{"item_id": pair[0], "correct": pair[1]}]},
        )
        assert status == 200, reply

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(send, answers))
    return answers


def _check_no_answer_lost(base: str, bank, student: str, answers) -> None:
    status, reply = _get(base, f"/v1/students/{student}")
    row = np.full((1, len(bank.item_ids)), np.nan)
    for item, right in answers:
        row[0, bank.item_ids.index(item)] = right
    assert (
        status == 200
        and reply["n_answers"] == len(answers)
        and len(reply["answers"]) == len(answers)
    )
    assert abs(reply["theta"] - score_persons(bank, row).theta[0]) < 1e-9  # every update is in


def test_parallel_answers_for_one_student_lose_no_update(bank_file):
    _, path, bank = bank_file
    with ApiServer(path, "--workers", "2", "--log-level", "warning") as server:
        answers = _parallel_answers(server.base, bank, "bo")
        _check_no_answer_lost(server.base, bank, "bo", answers)


def test_the_postgresql_student_store_passes_the_same_tests(bank_file):
    _, path, bank = bank_file
    with PostgresServer() as pg:
        store = StudentStore(pg.url)
        engine = AdaptiveEngine(bank)
        threads = [
            threading.Thread(
                target=store.record,
                args=("v", "cy", [(bank.item_ids[j], j % 2)], engine, engine.start),
            )
            for j in range(30)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        state = store.load("v", "cy")
        assert state.n_answers == 30 and sorted(state.items) == sorted(bank.item_ids[:30])
        assert store.delete("cy") == (1, 30) and store.load("v", "cy") is None
        options = ("--students-store", pg.url, "--workers", "2", "--log-level", "warning")
        with ApiServer(path, *options) as server:
            answers = _parallel_answers(server.base, bank, "di")
            last = _session(server.base, "ed", -0.5, np.random.default_rng(18), 10)
        with ApiServer(path, *options) as server:  # restart: the state is in PostgreSQL
            _check_no_answer_lost(server.base, bank, "di", answers)
            assert _get(server.base, "/v1/students/ed")[1]["theta"] == last["theta"]


def test_the_simulation_report_runs_in_a_real_kernel_and_shows_the_study(tmp_path):
    from conftest import run

    values = {
        "bank_size": 200,
        "n_students": 120,
        "max_length": 15,
        "catsim_students": 20,
        "seed": 3,
    }
    options = [arg for name, value in values.items() for arg in ("-p", name, str(value))]
    out = tmp_path / "sim"
    result = run(
        "irt-nb",
        "report",
        "--notebook",
        "adaptive-simulation",
        "--quiet",
        "--output-dir",
        str(out),
        *options,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    study = json.loads((out / "simulation.json").read_text())
    rmse = study["rmse_by_length"]
    assert rmse["mfi"]["15"] < rmse["mfi"]["5"]
    assert rmse["mfi"]["15"] < rmse["fixed form (random items)"]["15"]
    assert study["max_exposure"]["mfi"] > study["max_exposure"]["mfi + Sympson–Hetter"]
    try:
        import catsim  # noqa: F401  (installed by `make bench` only)
    except ImportError:
        assert study["catsim"] is None
    else:
        assert study["catsim"]["agree"], study["catsim"]
    html = (out / "adaptive_simulation.html").read_text()
    assert html.count("data:image/png;base64") >= 3 and "Agreement with catsim" in html
