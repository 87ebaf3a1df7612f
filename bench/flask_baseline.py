"""Baseline for bench/api.py: the same probabilities endpoint as Flask + jsonschema, served by gunicorn.

Validation uses a precompiled jsonschema validator of the same request schema; the computation is the
same NumPy expression on the same model file. Run: IRT_NB_MODEL=model.json gunicorn bench.flask_baseline:app
"""

import json
import os
from pathlib import Path

import jsonschema
import numpy as np
from flask import Flask, jsonify, request
from scipy.special import expit

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "irt_nb/schemas/probabilities_request.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
MODEL = json.loads(Path(os.environ["IRT_NB_MODEL"]).read_text())
INDEX = {item["id"]: j for j, item in enumerate(MODEL["items"])}
A = np.array([i["discrimination"] for i in MODEL["items"]])
B = np.array([i["difficulty"] for i in MODEL["items"]])
C = np.array([i["guessing"] for i in MODEL["items"]])

app = Flask(__name__)


@app.post("/v1/probabilities")
def probabilities():
    body = request.get_json()
    errors = [e.message for e in VALIDATOR.iter_errors(body)]
    if errors:
        return jsonify({"error": "invalid_request", "detail": errors, "path": "$"}), 422
    columns = np.array([INDEX[i] for i in body["items"]])
    theta = body["theta"]
    p = C[columns] + (1 - C[columns]) * expit(A[columns] * (theta - B[columns]))
    return jsonify(
        {
            "ability": {"theta": theta, "se": None, "source": "theta"},
            "probabilities": [
                {"item_id": i, "probability": float(v)}
                for i, v in zip(body["items"], p, strict=True)
            ],
            "warnings": [],
        }
    )
