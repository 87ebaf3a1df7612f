"""Locust scenario for the irt_nb API (loopback only, bounded in time).

Headless run, 32 users for 30 seconds, against a server started with `irt-nb serve --model outputs/model.json`:
    .venv/bin/locust -f bench/locustfile.py --headless -u 32 -r 8 -t 30s --host http://127.0.0.1:8000 --only-summary
"""

import random

from locust import FastHttpUser, between, task

ITEMS = [f"M{j:03d}" for j in range(1, 41)]  # item ids of the sample database's math items


class Client(FastHttpUser):
    wait_time = between(0, 0.01)

    def on_start(self):
        known = self.client.get("/v1/items").json()["items"]
        self.items = [i["item_id"] for i in known]

    @task(6)
    def probabilities_by_theta(self):
        self.client.post(
            "/v1/probabilities",
            json={
                "theta": random.uniform(-3, 3),
                "items": random.sample(self.items, min(20, len(self.items))),
            },
        )

    @task(2)
    def probabilities_from_answers(self):
        answers = {
            i: random.randint(0, 1) for i in random.sample(self.items, min(10, len(self.items)))
        }
        self.client.post("/v1/probabilities", json={"responses": answers, "items": self.items[:5]})

    @task(1)
    def batch(self):
        students = [{"theta": random.uniform(-3, 3)} for _ in range(20)]
        self.client.post(
            "/v1/probabilities/batch", json={"students": students, "items": self.items[:20]}
        )

    @task(1)
    def bad_request(self):
        with self.client.post(
            "/v1/probabilities", json={"theta": 99, "items": []}, catch_response=True
        ) as response:
            if response.status_code == 422:
                response.success()
