"""The plain reference of the serving speed check: the same server stack (uvicorn + Starlette, one
worker) answering POST /v1/probabilities with the same NumPy expression on the same model file, and
nothing else: no schema validation, keys, request ids, access log, metrics or canary.

    IRT_NB_MODEL=model.json python -m uvicorn plain_server:app --app-dir tests --port 8001
"""

import json
import os
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MODEL = json.loads(Path(os.environ["IRT_NB_MODEL"]).read_text())
INDEX = {item["item_id"]: j for j, item in enumerate(MODEL["items"])}
A = np.array([i["discrimination"] for i in MODEL["items"]])
B = np.array([i["difficulty"] for i in MODEL["items"]])


async def probabilities(request: Request) -> Response:
    body = json.loads(await request.body())
    columns = np.array([INDEX[i] for i in body["items"]])
    p = 1 / (1 + np.exp(-A[columns] * (body["theta"] - B[columns])))
    answer = {
        "probabilities": [
            {"item_id": i, "probability": float(v)} for i, v in zip(body["items"], p, strict=True)
        ]
    }
    return Response(json.dumps(answer), media_type="application/json")


app = Starlette(routes=[Route("/v1/probabilities", probabilities, methods=["POST"])])
