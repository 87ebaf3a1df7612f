"""The model registry and shipping a new model to a running server (`irt-nb serve --registry`, 2 workers).

Promotion and rollback under steady load with zero failed requests, every gate refusal with its reason,
a corrupt version that never replaces the served one, the canary fraction, `verify`, and the same
registry on the S3-compatible test server.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import run
from servers import ApiServer, S3Server

from irt_nb.science.calculation import fit_irt
from irt_nb.science.model_file import load_model, save_model
from irt_nb.science.pipeline import calibrate
from irt_nb.science.preparation import create_sample_database
from irt_nb.serving.api.models import ModelState
from irt_nb.serving.registry import (
    Registry,
    canary_report,
    gates,
    register_calibration,
    start_canary,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    db = create_sample_database(folder / "sample.sqlite", seed=11, n_students=1500)
    return folder, {
        "source": f"sqlite:///{db}",
        "exam": "2026-spring",
        "subject": "math",
        "model": "2pl",
    }


def register(registry, settings, reason, **overrides):
    "Calibrate with `settings` (+ overrides) and register the result; the version id."
    used = {**settings, **overrides}
    fitted = calibrate(**used, progress=False)
    return register_calibration(registry, fitted.model, fitted.matrix.codes, used, reason)


def registry_cli(*args):
    return run("irt-nb", "models", *map(str, args))


def test_each_gate_failure_is_refused_with_its_reason(sample, tmp_path):
    folder, settings = sample
    registry = Registry(tmp_path / "registry")
    v1 = register(registry, settings, "spring")
    assert registry_cli("promote", registry.url, v1).returncode == 0
    model = load_model(f"{registry.url}/versions/{v1}/model.json")
    not_converged = register(registry, settings, "capped", max_iter=2, tol_param=1e-12)
    at_bound = replace(
        model,
        discrimination=np.r_[10.0, model.discrimination[1:]],
        intercept=np.r_[model.intercept[0] * 10 / model.discrimination[0], model.intercept[1:]],
    )
    at_bound.difficulty = -at_bound.intercept / at_bound.discrimination
    shifted = replace(
        model,
        intercept=model.intercept - model.discrimination * 1.0,
        difficulty=model.difficulty + 1.0,
        abilities=None,
    )
    added = {}
    for name, variant in (("at_bound", at_bound), ("shifted", shifted)):
        path = save_model(variant, tmp_path / f"{name}.json")
        added[name] = registry.add(path, name, metrics=registry.version(v1).metrics)
    noise_codes = np.where(
        np.random.default_rng(0).random((1500, 30)) < 0.3,
        -1,
        np.random.default_rng(1).integers(0, 2, (1500, 30)),
    ).astype(np.int8)
    noise = register_calibration(
        registry,
        replace(model, abilities=None, data_fingerprint="noise"),
        noise_codes,
        settings,
        "noise",
    )
    # 300 students, one common slope: a 2PL's extra slopes fit noise, and the 1PL predicts better
    rng = np.random.default_rng(1)
    difficulty = np.linspace(-1.5, 1.5, 20)
    common = 1 / (1 + np.exp(-(rng.standard_normal((300, 1)) - difficulty)))
    small = (rng.random(common.shape) < common).astype(np.int8)
    overfit = register_calibration(
        registry, fit_irt(small, progress=False), small, {**settings, "model": "2pl"}, "overfit"
    )
    expected = {
        overfit: "simpler model: held-out log-loss",
        not_converged: "converged: did not converge",
        added["at_bound"]: "parameters: items at the engine's bounds",
        added["shifted"]: "scale: 30 shared items: mean difficulty shift +1.000",
        noise: "quality: held-out log-loss",
    }
    for version, reason in expected.items():
        refused = registry_cli("promote", registry.url, version)
        assert refused.returncode == 1 and reason in refused.stderr, (version, refused.stderr)
        assert registry.pointer()["current"] == v1
        decision = json.loads(registry_cli("show", registry.url, version).stdout)["gates"][-1]
        assert decision["promoted"] is False and reason.split(":")[0] in {
            c["check"] for c in decision["checks"] if not c["passed"]
        }
    same = register(registry, settings, "refit", tol_param=1e-5)
    refused = registry_cli("promote", registry.url, same, "--require-canary")
    assert refused.returncode == 1 and "canary: 0 requests compared" in refused.stderr
    forced = registry_cli(
        "promote",
        registry.url,
        added["shifted"],
        "--force",
        "--by",
        "ana",
        "--reason",
        "linked by hand",
    )
    assert forced.returncode == 0, forced.stderr
    last = registry.pointer()["history"][-1]
    assert (last["by"], last["reason"], last["forced"], last["current"]) == (
        "ana",
        "linked by hand",
        True,
        added["shifted"],
    )


def _two_forms(path, reversed_b: bool) -> None:
    "5,000 students on form A and 1,000 on form B, as long records; B's items run the other way if `reversed_b`."
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(0, 0.3, 25), np.linspace(-2, 2, 25)
    forms = np.array(["A"] * 5000 + ["B"] * 1000)
    difficulty = np.where((forms == "B")[:, None] & reversed_b, b[::-1], b)
    ability = rng.standard_normal((6000, 1))
    right = rng.random((6000, 25)) < 1 / (1 + np.exp(-a * (ability - difficulty)))
    pd.DataFrame(
        {
            "student_id": np.repeat([f"s{i:04d}" for i in range(6000)], 25),
            "item_id": np.tile([f"q{j:02d}" for j in range(25)], 6000),
            "correct": right.ravel().astype(int),
            "form": np.repeat(forms, 25),
        }
    ).to_csv(path, index=False)


def test_the_gate_refuses_a_model_that_serves_one_slice_badly(tmp_path):
    registry = tmp_path / "registry"
    versions = {}
    for name, reversed_b in (("alike", False), ("apart", True)):
        _two_forms(tmp_path / f"{name}.csv", reversed_b)
        fitted = run(
            "irt-nb", "fit", tmp_path / f"{name}.csv", "--out", tmp_path / f"{name}.json", "--quiet",
            "--registry", registry, "--slice", "form", "--reason", name,
        )  # fmt: skip
        assert fitted.returncode == 0, fitted.stderr
        assert "form = B: held-out log-loss" in fitted.stdout
        versions[name] = fitted.stdout.split("registered version ")[1].split()[0]
    refused = registry_cli("promote", registry, versions["apart"])
    assert refused.returncode == 1 and "slices: worst slice 'B'" in refused.stderr, refused.stderr
    metrics = Registry(registry).version(versions["apart"]).metrics
    assert metrics["slice_column"] == "form" and metrics["slices"]["B"]["bias"] > 0.1
    assert registry_cli("promote", registry, versions["alike"]).returncode == 0
    loosened = registry_cli(
        "promote", registry, versions["apart"], "--slice-logloss", "1", "--slice-bias", "1"
    )
    assert "slices" not in loosened.stderr  # judged by the given thresholds (other checks may fail)
    alone = run("irt-nb", "fit", tmp_path / "alike.csv", "--slice", "form", "--quiet")
    assert alone.returncode == 2 and "give --registry too" in alone.stderr


def test_a_new_item_is_pretested_calibrated_onto_the_scale_and_promoted(sample, tmp_path):
    """D6: a new question goes from pretest to the served version by the documented path: the next
    term's answers to the operational items plus a pretest item, a fit with the operational items
    held at their served values, the gate, the pointer."""
    import sqlite3

    folder, settings = sample
    registry = tmp_path / "registry"
    operational = tmp_path / "operational.json"
    done = run(
        "irt-nb", "fit", settings["source"], "--exam", "2026-spring", "--subject", "math",
        "--out", operational, "--quiet", "--registry", registry, "--reason", "operational",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    v1 = done.stdout.split("registered version ")[1].split()[0]
    assert registry_cli("promote", registry, v1).returncode == 0
    served = load_model(operational)
    with sqlite3.connect(folder / "sample.sqlite") as db:
        autumn = pd.read_sql(
            "SELECT student_id, item_id, correct FROM responses "
            "WHERE exam = '2026-autumn' AND subject = 'math'",
            db,
        )
        truth = pd.read_sql("SELECT student_id, theta FROM students_truth", db)
    autumn = autumn[autumn.item_id.isin(served.item_ids)]  # the operational items ...
    students = truth[truth.student_id.isin(autumn.student_id)]
    rng = np.random.default_rng(8)  # ... and a pretest item every student answers: a = 1.3, b = 0.4
    right = rng.random(len(students)) < 1 / (1 + np.exp(-1.3 * (students.theta - 0.4)))
    pretest = pd.DataFrame({"student_id": students.student_id, "item_id": "P001", "correct": right})
    pd.concat([autumn, pretest.astype({"correct": int})]).to_csv(
        tmp_path / "pretest.csv", index=False
    )
    done = run(
        "irt-nb", "fit", tmp_path / "pretest.csv", "--anchors", operational,
        "--out", tmp_path / "with_pretest.json", "--quiet", "--registry", registry,
        "--reason", "pretest P001",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    v2 = done.stdout.split("registered version ")[1].split()[0]
    candidate = load_model(tmp_path / "with_pretest.json")
    j = candidate.item_ids.index("P001")
    assert not candidate.fixed[j] and candidate.fixed.sum() == len(set(autumn.item_id))
    for item in set(autumn.item_id):  # the operational items keep their served values
        k, o = candidate.item_ids.index(item), served.item_ids.index(item)
        assert candidate.difficulty[k] == pytest.approx(served.difficulty[o], abs=1e-9)
    se = json.loads((tmp_path / "with_pretest.json").read_text())["items"][j]
    assert abs(candidate.discrimination[j] - 1.3) < 3 * se["se_discrimination"], se
    assert abs(candidate.difficulty[j] - 0.4) < 3 * se["se_difficulty"], se
    promoted = registry_cli("promote", registry, v2, "--reason", "P001 pretested")
    assert promoted.returncode == 0, promoted.stderr
    assert Registry(registry).pointer()["current"] == v2
    scale = next(c for c in gates(Registry(registry), v2)[-1]["checks"] if c["check"] == "scale")
    assert scale["passed"] and "mean difficulty shift +0.000" in scale["detail"], scale


def _post(base: str, path: str, body: dict) -> int:
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as e:
        return e.code


def test_an_erased_student_is_in_no_store_and_no_longer_served(sample, tmp_path):
    "D5: `irt-nb erase` on a served registry, a student store and model files; no file keeps the id."
    _, settings = sample
    registry = tmp_path / "registry"
    versions = []
    for quadrature in ("61", "41"):  # two versions, each holding every student's ability
        done = run(
            "irt-nb", "fit", settings["source"], "--exam", "2026-spring", "--subject", "math",
            "--quadrature", quadrature, "--out", tmp_path / f"q{quadrature}.json", "--quiet",
            "--registry", registry, "--holdout", "0",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        versions.append(done.stdout.split("registered version ")[1].split()[0])
    assert registry_cli("promote", registry, versions[0]).returncode == 0
    model = load_model(tmp_path / "q61.json")
    student, item = model.abilities.ids()[5], model.item_ids[0]
    stores = {name: tmp_path / f"{name}.sqlite" for name in ("students", "outcomes")}
    by_id = {"student_id": student, "items": [item]}
    with ApiServer(
        None, "--registry", str(registry), "--workers", "2", "--log-level", "warning",
        "--students-store", f"sqlite:///{stores['students']}",
        "--outcomes-store", f"sqlite:///{stores['outcomes']}",
    ) as server:  # fmt: skip
        assert _post(server.base, "/v1/probabilities", by_id) == 200
        answer = {"student_id": student, "answers": [{"item_id": item, "correct": 1}]}
        assert _post(server.base, "/v1/answers", answer) == 200
        outcome = {"student_id": student, "item_id": item, "correct": 1}
        assert _post(server.base, "/v1/outcomes", outcome) == 200
        erased = run(
            "irt-nb", "erase", student, "--registry", registry,
            "--students-store", f"sqlite:///{stores['students']}",
            "--model", tmp_path / "q61.json", "--model", tmp_path / "q41.json",
            "--reason", "request 17",
        )  # fmt: skip
        assert erased.returncode == 0, erased.stderr
        assert "1 state(s) and 1 answer(s) deleted" in erased.stdout
        assert "abilities rewritten in 2 version(s)" in erased.stdout
        # each worker reloads when the pointer counts the erasure: 20 refusals in a row, bounded wait
        refused, deadline = 0, time.monotonic() + 60
        while refused < 20 and time.monotonic() < deadline:
            refused = refused + 1 if _post(server.base, "/v1/probabilities", by_id) == 404 else 0
        assert refused == 20, "a worker still serves the erased student's ability"
    holders = [
        path
        for path in [*registry.rglob("*"), *tmp_path.glob("q*"), *tmp_path.glob("*.sqlite*")]
        if path.is_file() and student.encode() in path.read_bytes()
    ]
    assert holders == [], holders
    for vid in versions:
        assert Registry(registry).version(vid).provenance["erasures"][0]["reason"] == "request 17"
    # the same version, refitted from its recorded settings
    assert registry_cli("verify", registry, versions[0]).returncode == 0


def test_verify_passes_on_a_registered_version_and_fails_on_a_tampered_one(sample, tmp_path):
    _, settings = sample
    registry = Registry(tmp_path / "registry")
    v1 = register(registry, settings, "spring")
    verified = registry_cli("verify", registry.url, v1)
    assert (
        verified.returncode == 0 and "parameters within 1e-05" in verified.stdout
    )  # what it checks
    path = tmp_path / "registry" / "versions" / v1 / "model.json"
    doc = json.loads(path.read_text())
    doc["items"][0]["discrimination"] += 1e-4
    doc["items"][0]["difficulty"] = (
        -doc["items"][0]["intercept"] / doc["items"][0]["discrimination"]
    )
    path.write_text(json.dumps(doc))
    tampered = registry_cli("verify", registry.url, v1)
    assert tampered.returncode == 1 and "does not hash to its id" in tampered.stderr
    assert "parameters differ by up to 0.0001" in tampered.stderr


def two_versions(sample, tmp_path):
    "A registry with two near-identical calibrations, the first one current."
    _, settings = sample
    registry = Registry(tmp_path / "registry")
    v1 = register(registry, settings, "spring")
    v2 = register(registry, settings, "refit", tol_param=1e-5, newton_finish=False)  # stops earlier
    assert v2 != v1, "the two calibrations must differ"
    assert registry_cli("promote", registry.url, v1).returncode == 0
    return registry, v1, v2


def serving(registry):
    "`irt-nb serve --registry` with 2 workers."
    return ApiServer(None, "--registry", registry.url, "--workers", "2", "--log-level", "warning")


def get(base, path="/v1/model"):
    with urllib.request.urlopen(base + path, timeout=10) as reply:
        return reply.headers["x-model-version"], json.loads(reply.read())


def wait_for_workers(base, version, workers=2, timeout=120.0) -> float:
    "Poll /v1/model until `workers` distinct workers answer with `version`; the monotonic time they all had."
    switched, deadline = set(), time.monotonic() + timeout
    while len(switched) < workers:
        assert time.monotonic() < deadline, (
            f"only workers {switched} serve {version} after {timeout} s"
        )
        served, info = get(base)
        if served == version:
            switched.add(info["worker"])
        time.sleep(0.01)
    return time.monotonic()


def test_promotion_and_rollback_under_load_fail_no_request(sample, tmp_path):
    # The mechanism, not a time window: each worker follows the pointer, no request fails meanwhile, and
    # once every worker has loaded the new version no request is answered by the old one.
    registry, v1, v2 = two_versions(sample, tmp_path)
    with serving(registry) as server:
        statuses, answers, stop = [], [], threading.Event()
        body = json.dumps(
            {
                "theta": 0.4,
                "items": load_model(f"{registry.url}/versions/{v1}/model.json").item_ids[:10],
            }
        ).encode()

        def load():
            while not stop.is_set():
                request = urllib.request.Request(
                    server.base + "/v1/probabilities",
                    data=body,
                    headers={"content-type": "application/json"},
                )
                sent = time.monotonic()
                try:
                    with urllib.request.urlopen(request, timeout=30) as reply:
                        statuses.append(reply.status)
                        answers.append((sent, reply.headers["x-model-version"]))
                except urllib.error.HTTPError as error:
                    statuses.append(error.code)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert registry_cli("promote", registry.url, v2).returncode == 0
        promoted = wait_for_workers(server.base, v2)
        time.sleep(0.5)
        rolling_back = time.monotonic()  # from here on v1 may answer again
        assert registry_cli("rollback", registry.url).returncode == 0
        rolled_back = wait_for_workers(server.base, v1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        print(
            f"promotion and rollback under load: {len(statuses)} requests, {sum(s != 200 for s in statuses)} not 200"
        )
        assert len(statuses) > 50 and all(s == 200 for s in statuses)
        between = {v for sent, v in answers if promoted < sent < rolling_back}
        after = {v for sent, v in answers if sent > rolled_back}
        assert between == {v2} and after == {v1}, (between, after)  # no worker went back
        assert {v for sent, v in answers if sent < promoted} >= {v1}
        assert get(server.base)[1]["version"] == v1


def test_a_corrupt_version_never_replaces_the_served_one(sample, tmp_path):
    registry, v1, v2 = two_versions(sample, tmp_path)
    with serving(registry) as server:
        model = tmp_path / "registry" / "versions" / v2 / "model.json"
        model.write_text(model.read_text()[:500])  # truncated, as by a full disk elsewhere
        registry.move("promote", "test", "pointer moved to a damaged version", current=v2)
        refused, deadline = set(), time.monotonic() + 120
        while len(refused) < 2:  # each worker tried the damaged version and kept the good one
            assert time.monotonic() < deadline, f"only workers {refused} report the damaged load"
            version, info = get(server.base)
            assert version == v1 and info["version"] == v1
            if "not JSON" in (info["last_load_error"] or ""):
                refused.add(info["worker"])
            time.sleep(0.01)
        assert get(server.base, "/ready")[1]["status"] == "ready"


def test_a_worker_that_starts_on_a_damaged_version_serves_the_last_good_one(sample, tmp_path):
    # `irt-nb serve` refuses to start on a damaged version; but a worker that (re)starts after the
    # pointer moved to one has nothing served to keep: it serves the newest earlier version that loads.
    registry, v1, v2 = two_versions(sample, tmp_path)
    model = tmp_path / "registry" / "versions" / v2 / "model.json"
    model.write_text(model.read_text()[:500])
    registry.move("promote", "test", "pointer moved to a damaged version", current=v2)
    state = ModelState()
    state._apply(registry)
    assert state.status == "ready" and state.served.version == v1
    assert "not JSON" in state.describe()["last_load_error"]


def test_the_canary_fraction_holds_and_its_record_feeds_the_gate(sample, tmp_path):
    registry, v1, v2 = two_versions(sample, tmp_path)
    start_canary(registry, v2, 0.2, by="test")
    students = load_model(f"{registry.url}/versions/{v1}/model.json").abilities.ids()
    items = load_model(f"{registry.url}/versions/{v1}/model.json").item_ids[:5]
    with serving(registry) as server:
        answered = []
        for student in students[:1000]:
            request = urllib.request.Request(
                server.base + "/v1/probabilities",
                data=json.dumps({"student_id": student, "items": items}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as reply:
                answered.append(reply.headers["x-model-version"])
        share = answered.count(v2) / len(answered)
        assert abs(share - 0.2) < 3 * (0.2 * 0.8 / len(answered)) ** 0.5, share
        deadline = time.monotonic() + 120  # workers write their canary records every half second
        while (record := canary_report(registry, v2))["n_compared"] < answered.count(v2):
            assert time.monotonic() < deadline, f"canary record stuck at {record['n_compared']}"
            time.sleep(0.1)
        assert record["n_compared"] == answered.count(v2) and record["mean_abs_dp"] < 0.01
        shown = json.loads(registry_cli("show", registry.url, v2).stdout)
        assert shown["canary"]["n_compared"] == record["n_compared"]
        promoted = registry_cli("promote", registry.url, v2, "--require-canary")
        assert promoted.returncode == 0, promoted.stderr
        assert "pass canary" in promoted.stdout


def test_the_registry_works_on_object_storage(sample):
    _, settings = sample
    with S3Server("models") as s3:
        options = s3.storage_options
        url = f"s3://{s3.bucket}/irt"
        registry = Registry(url, options)
        v1 = register(registry, settings, "spring")
        flags = [arg for k, v in options.items() for arg in ("--storage-option", f"{k}={v}")]
        assert registry_cli("promote", url, v1, *flags).returncode == 0
        assert registry_cli("verify", url, v1, *flags).returncode == 0
        with ApiServer(
            None, "--registry", url, *flags, "--workers", "2", "--log-level", "warning"
        ) as server:
            version, info = get(server.base)
            assert version == v1 and info["version"] == v1
        listed = registry_cli("list", url, *flags)
        assert v1 in listed.stdout and "current" in listed.stdout


# Polytomous versions: a GRM calibration through add, the gate, canary, rollback and `serve --registry`.


@pytest.fixture(scope="module")
def grm_files(tmp_path_factory):
    "2,000 students' scores 0-3 on 8 GRM items whose slopes differ (0.5 to 2.5), as a wide CSV; its GRM and GPCM fits."
    from irt_nb.science.polytomous_report import simulate_scores

    folder = tmp_path_factory.mktemp("polytomous")
    rng = np.random.default_rng(3)
    slopes = rng.permutation(np.linspace(0.5, 2.5, 8))
    steps = np.sort(rng.normal(0, 1, (8, 3)), axis=1)
    wide = simulate_scores(
        kind="grm", discrimination=slopes, intercepts=[-a * b for a, b in zip(slopes, steps, strict=True)],
        n_persons=2000, seed=1, missing=0.1,
    )  # fmt: skip
    wide.to_csv(folder / "scores.csv", index=False)
    for kind in ("grm", "gpcm"):
        fitted = run(
            "irt-nb", "fit", folder / "scores.csv", "--wide", "--model", kind,
            "--out", folder / f"{kind}.json", "--quiet",
        )  # fmt: skip
        assert fitted.returncode == 0, fitted.stderr
    return folder


def add_polytomous(registry, model, data, reason, *options):
    "`irt-nb models add MODEL REGISTRY --data DATA --wide`: the version id."
    added = registry_cli(
        "add", model, registry, "--reason", reason, "--data", data, "--wide", *options
    )
    assert added.returncode == 0, added.stderr
    return added.stdout.split()[2].rstrip(",")


def test_a_grm_calibration_is_promoted_and_degraded_ones_are_refused_with_their_reason(
    grm_files, tmp_path
):
    from irt_nb.science.polytomous import load_polytomous_model, polytomous_to_dict

    registry = Registry(tmp_path / "registry")
    data = grm_files / "scores.csv"
    g1 = add_polytomous(registry.url, grm_files / "grm.json", data, "GRM spring")
    metrics = registry.version(g1).metrics
    assert (
        registry.version(g1).provenance["model"] == "grm"
        and metrics["holdout_outcome"] == "category"
    )
    # the GRM's held-out category log-loss beats the PCM's on the same split (its items' slopes differ)
    assert metrics["simpler_model"] == "pcm" and 1300 < metrics["n_holdout"] < 1600
    assert metrics["holdout_logloss"] < metrics["simpler_holdout_logloss"] - 0.02, metrics
    promoted = registry_cli("promote", registry.url, g1)
    assert promoted.returncode == 0, promoted.stderr
    record = gates(registry, g1)[-1]
    assert record["promoted"] and [c["check"] for c in record["checks"]] == [
        "converged", "parameters", "simpler model",
    ]  # fmt: skip
    simpler = record["checks"][2]["detail"]
    print(f"GRM {g1}: {simpler}")
    assert simpler.startswith(
        f"held-out log-loss {metrics['holdout_logloss']:.4f} vs {metrics['simpler_holdout_logloss']:.4f} for the pcm"
    ), simpler
    # degraded candidates: every location +1.0, one slope run away, a fit stopped after 2 iterations,
    # and a GPCM on 200 students of PCM data (one common slope): its own slopes fit noise
    model = load_polytomous_model(grm_files / "grm.json")
    doc = polytomous_to_dict(model)
    for item in doc["items"]:
        item["intercepts"] = [d - item["discrimination"] for d in item["intercepts"]]
        item["thresholds"] = [b + 1.0 for b in item["thresholds"]]
    (tmp_path / "shifted.json").write_text(json.dumps(doc))
    doc = polytomous_to_dict(model)
    doc["items"][3]["discrimination"] *= 12 / doc["items"][3]["discrimination"]
    doc["items"][3]["thresholds"] = [-d / 12 for d in doc["items"][3]["intercepts"]]
    (tmp_path / "runaway.json").write_text(json.dumps(doc))
    capped = run(
        "irt-nb", "fit", data, "--wide", "--model", "grm", "--max-iter", "2",
        "--out", tmp_path / "capped.json", "--quiet",
    )  # fmt: skip
    assert capped.returncode == 0, capped.stderr
    from irt_nb.science.polytomous_report import simulate_scores

    rng = np.random.default_rng(5)
    pcm = simulate_scores(
        kind="pcm", discrimination=[1.0] * 12, intercepts=[np.cumsum(-rng.normal(0, 1, 3)) for _ in range(12)],
        n_persons=200, seed=2,
    )  # fmt: skip
    pcm.to_csv(tmp_path / "few.csv", index=False)
    few = run(
        "irt-nb",
        "fit",
        tmp_path / "few.csv",
        "--wide",
        "--model",
        "gpcm",
        "--out",
        tmp_path / "few.json",
        "--quiet",
    )
    assert few.returncode == 0, few.stderr
    expected = {
        add_polytomous(registry.url, tmp_path / "shifted.json", data, "shifted"): "scale: 8 shared items: mean location shift +1.000",
        add_polytomous(registry.url, tmp_path / "runaway.json", data, "runaway"): f"parameters: items beyond |a| 10 or |d| 30: ['{model.item_ids[3]}']",
        add_polytomous(registry.url, tmp_path / "capped.json", data, "capped"): "converged: did not converge in 2 iterations",
        add_polytomous(registry.url, tmp_path / "few.json", tmp_path / "few.csv", "200 students", "--holdout", "0.2"): "simpler model: held-out log-loss",
    }  # fmt: skip
    for version, reason in expected.items():
        refused = registry_cli("promote", registry.url, version)
        assert refused.returncode == 1 and reason in refused.stderr, (reason, refused.stderr)
        print(refused.stderr.strip())
        assert registry.pointer()["current"] == g1
        decision = json.loads(registry_cli("show", registry.url, version).stdout)["gates"][-1]
        assert decision["promoted"] is False and reason.split(":")[0] in {
            c["check"] for c in decision["checks"] if not c["passed"]
        }
    few_metrics = registry.version(list(expected)[-1]).metrics
    assert few_metrics["holdout_logloss"] > few_metrics["simpler_holdout_logloss"] + 0.001, (
        few_metrics
    )


def test_a_polytomous_version_replaces_a_right_wrong_one_comparing_only_items_of_its_kind(
    grm_files, tmp_path
):
    "The same item ids scored right/wrong (score ≥ 2) in the current version: allowed, said in the gate's detail."
    from irt_nb.science.polytomous import load_polytomous_model

    wide = pd.read_csv(grm_files / "scores.csv")
    model = load_polytomous_model(grm_files / "grm.json")
    codes = np.where(wide[list(model.item_ids)].isna(), -1, wide[list(model.item_ids)] >= 2).astype(
        np.int8
    )
    right_wrong = replace(fit_irt(codes, progress=False), item_ids=list(model.item_ids))
    registry = Registry(tmp_path / "registry")
    v1 = register_calibration(registry, right_wrong, codes, {"model": "2pl"}, "right/wrong")
    assert registry_cli("promote", registry.url, v1).returncode == 0
    g1 = add_polytomous(registry.url, grm_files / "grm.json", grm_files / "scores.csv", "GRM")
    promoted = registry_cli("promote", registry.url, g1)
    assert promoted.returncode == 0, promoted.stderr
    assert (
        "pass scale: no shared item of the same kind; 8 shared items of another kind not compared"
        in promoted.stdout
    )
    assert "over category scores vs" in promoted.stdout and "not comparable" in promoted.stdout
    print(promoted.stdout)
    back = registry_cli("rollback", registry.url)
    assert back.returncode == 0 and registry.pointer()["current"] == v1


def _probabilities(base: str, items: list[str]) -> str:
    request = urllib.request.Request(
        base + "/v1/probabilities",
        data=json.dumps({"theta": 0.4, "items": items}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        body = json.loads(reply.read())
        assert len(body["probabilities"][0]["category_probabilities"]) == 4
        return reply.headers["x-model-version"]


def test_serve_registry_serves_a_polytomous_version_through_canary_promotion_and_rollback(
    grm_files, tmp_path
):
    registry = Registry(tmp_path / "registry")
    data = grm_files / "scores.csv"
    g1 = add_polytomous(registry.url, grm_files / "grm.json", data, "GRM")
    g2 = add_polytomous(registry.url, grm_files / "gpcm.json", data, "GPCM")
    assert registry_cli("promote", registry.url, g1).returncode == 0
    items = [f"item{j:02d}" for j in range(1, 9)]
    with serving(registry) as server:
        version, info = get(server.base)
        assert (version, info["version"], info["model"], info["n_items"]) == (g1, g1, "grm", 8)
        canary = registry_cli("canary", registry.url, g2, "--fraction", "1")
        assert canary.returncode == 0, canary.stderr
        deadline = time.monotonic() + 60
        while _probabilities(server.base, items) != g2:  # each worker follows the pointer
            assert time.monotonic() < deadline, "no worker serves the canary"
        for _ in range(150):
            _probabilities(server.base, items)
        deadline = time.monotonic() + 60  # workers write their canary records every half second
        while (record := canary_report(registry, g2) or {"n_compared": 0})["n_compared"] < 100:
            assert time.monotonic() < deadline, f"canary record stuck at {record['n_compared']}"
            time.sleep(0.1)
        # the GRM and the GPCM fitted to the same answers: expected scores close, not equal
        assert 0 < record["mean_abs_dp"] < 0.05, record
        print(f"canary GPCM {g2}: {record}")
        promoted = registry_cli("promote", registry.url, g2, "--require-canary")
        assert promoted.returncode == 0, promoted.stderr
        assert "pass canary" in promoted.stdout
        wait_for_workers(server.base, g2)
        assert get(server.base)[1]["model"] == "gpcm"
        assert registry_cli("rollback", registry.url).returncode == 0
        wait_for_workers(server.base, g1)
        version, info = get(server.base)
        assert (version, info["model"], info["canary"]) == (g1, "grm", None)
    assert [h["action"] for h in registry.pointer()["history"]] == [
        "promote", "canary", "promote", "rollback",
    ]  # fmt: skip
