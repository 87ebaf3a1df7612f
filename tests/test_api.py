"""The web API through its app factory, and a fuzz run of the served OpenAPI against a real server."""

import json
import subprocess

import jsonschema
import numpy as np
import pandas as pd
import pytest
from conftest import BIN
from servers import ApiServer
from starlette.testclient import TestClient

from irt_nb.science.model_file import load_model, save_model
from irt_nb.science.pipeline import calibrate
from irt_nb.science.preparation import create_sample_database
from irt_nb.science.scoring import score_persons
from irt_nb.serving.api.app import create_app
from irt_nb.serving.api.core import SCHEMAS, ApiLimits, ServeConfig
from irt_nb.serving.auth import KeyStore


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    db = create_sample_database(folder / "sample.sqlite", seed=6, n_students=600)
    run = calibrate(f"sqlite:///{db}", exam="2026-spring", subject="math", progress=False)
    scores = score_persons(run.model, run.matrix.codes)  # the abilities calibrate() saved
    assert run.model.abilities.ids() == list(run.matrix.person_ids)  # sorted, as the matrix
    np.testing.assert_array_equal(run.model.abilities.theta, scores.theta)
    return save_model(run.model, folder / "model.json")


@pytest.fixture(scope="module")
def client(model_file):
    return TestClient(
        create_app(ServeConfig(model=str(model_file), limits=ApiLimits(max_body_bytes=20_000)))
    )


def check(response, schema: str, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    jsonschema.validate(body, SCHEMAS[schema])
    assert response.headers["x-request-id"]
    return body


def test_probabilities_from_each_ability_source(client, model_file):
    model = json.loads(model_file.read_text())
    a, b = model["items"][0]["discrimination"], model["items"][0]["difficulty"]
    item = model["items"][0]["item_id"]
    by_theta = check(
        client.post("/v1/probabilities", json={"theta": 0.7, "items": [item]}),
        "probabilities_response",
    )
    assert by_theta["probabilities"][0]["probability"] == pytest.approx(
        1 / (1 + np.exp(-a * (0.7 - b))), abs=1e-12
    )
    abilities = load_model(model_file).abilities
    student = abilities.ids()[0]
    theta, se = abilities.get(student)
    by_id = check(
        client.post("/v1/probabilities", json={"student_id": student, "items": [item]}),
        "probabilities_response",
    )
    assert by_id["ability"] == {"theta": theta, "se": se, "source": "student_id"}
    answers = {i["item_id"]: 1 for i in model["items"][:5]}
    scored = check(
        client.post("/v1/probabilities", json={"responses": answers, "items": [item]}),
        "probabilities_response",
    )
    assert scored["ability"]["source"] == "responses" and scored["ability"]["theta"] > 0.5


def test_batch_abilities_items_model_health(client, model_file):
    ids = [i["item_id"] for i in json.loads(model_file.read_text())["items"]]
    batch = check(
        client.post(
            "/v1/probabilities/batch",
            json={"students": [{"theta": -1}, {"theta": 1}], "items": ids[:20]},
        ),
        "batch_response",
    )
    p_low, p_high = (
        np.array([p["probability"] for p in r["probabilities"]]) for r in batch["results"]
    )
    assert (p_high > p_low).all()
    for method in ("eap", "map", "ml"):
        scored = check(
            client.post("/v1/abilities", json={"responses": {i: 1 for i in ids}, "method": method}),
            "abilities_response",
        )
        assert scored["n_responses"] == len(ids) and np.isfinite(scored["theta"])
    assert scored["at_bound"]  # all right: the ML estimate sits at its bound, finite
    assert len(client.get("/v1/items").json()["items"]) == len(ids)
    check(client.get(f"/v1/items/{ids[3]}"), "item")
    check(client.get("/v1/items/nope"), "error", 404)
    assert client.get("/v1/model").json()["n_items"] == len(ids)
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"
    assert set(client.get("/openapi.json").json()["paths"]) >= {
        "/v1/probabilities",
        "/v1/probabilities/batch",
        "/v1/abilities",
    }


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"theta": NaN, "items": ["M001"]}', 400, "NaN and Infinity are not JSON"),
        (b'{"theta": Infinity, "items": ["M001"]}', 400, "not valid JSON"),
        (b'{"theta": 1e999, "items": ["M001"]}', 400, "not valid JSON"),
        (b'{"theta": 11, "items": ["M001"]}', 422, "$.theta: 11 is greater than the maximum of 10"),
        (
            b'{"theta": 0, "student_id": "S00001", "items": ["M001"]}',
            422,
            "$: give exactly one of student_id, theta, responses",
        ),
        (b'{"theta": 0}', 422, "$: 'items' is a required property"),
        (
            b'{"theta": 0, "items": ["M001"], "colour": 1}',
            422,
            "$: unexpected field(s) ['colour']",
        ),
        (
            b'{"responses": {"M001": 2}, "items": ["M001"]}',
            422,
            "$.responses.M001: 2 is not one of [0, 1]",
        ),
        (b"[1, 2]", 422, "$: [1, 2] is not of type 'object'"),
        (b'{"theta": 0, "items": ["M001", "ZZZ"]}', 422, "$.items: unknown item id 'ZZZ'"),
        (
            b'{"student_id": "nobody", "items": ["M001"]}',
            404,
            "$.student_id: no student 'nobody' in the model",
        ),
    ],
)
def test_bad_requests_get_4xx_in_one_shape_saying_what_and_where(client, body, status, detail):
    response = client.post(
        "/v1/probabilities", content=body, headers={"content-type": "application/json"}
    )
    error = check(response, "error", status)
    assert any(detail in line for line in error["detail"]), error


def test_every_problem_is_reported_and_long_lists_stay_short(client):
    body = {"students": [{"theta": 50}, {"student_id": ""}], "items": ["M001"] * 1001}
    error = check(client.post("/v1/probabilities/batch", json=body), "error", 422)
    assert "$.items: maxItems is 1000" in error["detail"]
    assert "$.students[0].theta: 50 is greater than the maximum of 10" in error["detail"]
    assert len(json.dumps(error)) < 2000  # no echo of the 1001-element list


def test_limits_and_request_ids(client):
    too_big = client.post(
        "/v1/probabilities",
        content=b"{" + b" " * 30_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert check(too_big, "error", 413)["error"] == "body_too_large"
    skipped = check(
        client.post(
            "/v1/probabilities",
            json={"theta": 0, "items": ["M001", "ZZZ"], "unknown_items": "skip"},
        ),
        "probabilities_response",
    )
    assert (
        skipped["warnings"] == ["skipped unknown item ids: ['ZZZ']"]
        and len(skipped["probabilities"]) == 1
    )
    echoed = client.get("/health", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


@pytest.fixture(scope="module")
def rating_scale_file(tmp_path_factory):
    "A GRM model file of a 1-5 rating scale: 1,200 respondents x 8 items, 10% not answered."
    from irt_nb.science.polytomous import encode_scores, fit_polytomous, save_polytomous_model

    rng = np.random.default_rng(26)
    theta = rng.standard_normal(1200)
    a, d = rng.uniform(0.8, 2.0, 8), -np.sort(rng.uniform(-2.5, 2.5, (8, 4)), axis=1)
    star = 1 / (1 + np.exp(-(a[None, :, None] * theta[:, None, None] + d[None])))  # P(X >= k)
    scores = 1 + (rng.random((1200, 8, 1)) < star).sum(axis=2).astype(float)
    scores[rng.random(scores.shape) < 0.1] = np.nan
    frame = pd.DataFrame(scores, columns=[f"r{j}" for j in range(8)])
    model = fit_polytomous(encode_scores(frame), model="grm")
    return save_polytomous_model(model, tmp_path_factory.mktemp("rating") / "rating.json")


@pytest.fixture(scope="module", params=["right/wrong", "rating scale"])
def served(request, model_file, rating_scale_file):
    "`irt-nb serve` with API keys, as users start it: (base URL, a key with every scope)."
    served_file = model_file if request.param == "right/wrong" else rating_scale_file
    folder = served_file.parent
    _, key = KeyStore(folder / "keys.json").create("fuzzer", ["read", "students", "write"])
    keys = str(folder / "keys.json")
    with ApiServer(
        served_file, "--workers", "1", "--log-level", "warning", "--keys", keys
    ) as server:
        yield server.base, key


def test_fuzzing_the_served_openapi_finds_no_server_error_and_no_contract_breach(served, tmp_path):
    """Schemathesis against the real server, serving right/wrong items and a rating scale: every check (no 5xx,
    schemas, keys enforced, schema-valid requests accepted, ...), bounded."""
    base, key = served
    result = subprocess.run(  # in tmp_path: its .schemathesis cache stays out of the checkout
        [
            str(BIN / "schemathesis"),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout


def test_score_table_and_scale_scores_for_a_model_that_carries_its_scale(model_file, tmp_path):
    "GET /v1/score-table is the library's table; a model file with a reporting scale adds scale scores."
    from irt_nb.science.score_tables import ReportingScale, score_table, with_scale

    plain = TestClient(create_app(model_file))
    found = check(plain.get("/v1/score-table"), "score_table_response")
    model = load_model(model_file)
    expected = score_table(model)
    assert found["scale"] is None and found["n_items"] == len(model.item_ids)
    assert found["reliability"] == pytest.approx(expected.reliability, rel=1e-12)
    np.testing.assert_allclose([r["theta"] for r in found["table"]], expected.table.theta)
    scale = ReportingScale(intercept=500, slope=100, round_to=10, lowest=200, highest=800)
    scaled = TestClient(create_app(save_model(with_scale(model, scale), tmp_path / "scaled.json")))
    table = check(scaled.get("/v1/score-table"), "score_table_response")
    assert table["scale"] == {"intercept": 500, "slope": 100, "round_to": 10, "lowest": 200, "highest": 800}  # fmt: skip
    assert [r["scale_score"] for r in table["table"]] == list(scale.scores(expected.table.theta))
    answers = {item: 1 for item in model.item_ids[:5]}
    scored = check(scaled.post("/v1/abilities", json={"responses": answers}), "abilities_response")
    assert scored["scale_score"] == scale.scores(scored["theta"])
    assert scored["scale_se"] == pytest.approx(100 * scored["se"])
    assert "scale_score" not in plain.post("/v1/abilities", json={"responses": answers}).json()
    assert "/v1/score-table" in scaled.get("/openapi.json").json()["paths"]
