"""Real servers for tests, on 127.0.0.1 only: a throwaway PostgreSQL, an S3-compatible moto server, `irt-nb serve`.

Under CI=true a server that cannot start fails the test (no skip hides a missing part); elsewhere the
PostgreSQL tests skip with the reason when the machine has no PostgreSQL (`make test` installs it in CI).
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    "Folder with initdb and pg_ctl, from PATH or Debian's /usr/lib/postgresql/<version>/bin."
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    "initdb + pg_ctl in a temporary folder, trust auth on 127.0.0.1, stopped on exit."

    def __init__(self):
        self.bin = postgres_bin()
        if self.bin is None:
            message = "PostgreSQL is not installed (initdb not found)"
            if IN_CI:
                pytest.fail(message + "; `make test` installs it under CI=true")
            pytest.skip(message + "; run `make test` with CI=true to install it")
        self.folder = Path(tempfile.mkdtemp(prefix="irt-nb-pg-"))
        self.port = free_port()
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, *args):
        return subprocess.run(
            [*self.prefix, *args], check=True, capture_output=True, text=True, timeout=120
        )

    def __enter__(self):
        data = self.folder / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
        )
        options = f"-p {self.port} -k {self.folder} -h 127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def __exit__(self, *exc):
        subprocess.run(
            [
                *self.prefix,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


class S3Server:
    "moto's S3-compatible server on 127.0.0.1 with one bucket."

    def __init__(self, bucket: str = "exams"):
        self.bucket = bucket

    def __enter__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port)
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.storage_options = {
            "key": "testing",
            "secret": "testing",
            "endpoint_url": self.endpoint,
        }
        import boto3

        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc):
        self.server.stop()


class ApiServer:
    "`irt-nb serve` as users start it, on 127.0.0.1, its stderr (the access log) in a file; stopped on exit."

    def __init__(self, model, *options: str, folder: Path | None = None):
        self.model, self.options = model, options
        self.folder = Path(folder or tempfile.mkdtemp(prefix="irt-nb-serve-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.folder / f"serve-{self.port}.log"

    def __enter__(self):
        from conftest import BIN

        model = ["--model", str(self.model)] if self.model is not None else []
        self.process = subprocess.Popen(
            [
                str(BIN / "irt-nb"),
                "serve",
                *model,
                "--port",
                str(self.port),
                *self.options,
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.log, "wb"),
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> float:
        "Seconds until /ready says ready (fails the test on timeout or if the server exits)."
        import urllib.request

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                pytest.fail(
                    f"irt-nb serve exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                urllib.request.urlopen(f"{self.base}/ready", timeout=1)
                return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"irt-nb serve was not ready within {timeout} s")

    def access_log(self) -> list[dict]:
        "The JSON access-log lines written so far."
        import json

        lines = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if "request_id" in record:
                    lines.append(record)
        return lines

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
