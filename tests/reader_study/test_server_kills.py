"""Regression: 20 readers answer at once while the server is killed with SIGKILL and restarted;
every answer the server acknowledged is kept, none twice, each reader's in plan order."""

from __future__ import annotations

import csv
import http.client
import http.cookiejar
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cemsynth.reader_study.build import build_study
from cemsynth.reader_study.study import key_dir, load_plan

from .conftest import Server, free_port, make_cohort

pytestmark = pytest.mark.slow

READERS = [f"R{i}" for i in range(1, 21)]
ANSWER = {"bpe": "b", "lesion": 0, "confidence": 3, "artifacts": {}, "comment": "", "marks": []}
GIVE_UP_S = 120.0


class Reader(threading.Thread):
    """Answers session 1 case by case, retrying through server outages as the app's page does
    (a lost reply to an answer that was in fact saved comes back as 409 "final")."""

    def __init__(self, url: str, user: str, credential: str) -> None:
        super().__init__(daemon=True)
        self.url, self.user, self.credential = url, user, credential
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.acknowledged: list[str] = []  # codes the server answered 201 for
        self.error: str | None = None

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            try:
                with self.opener.open(request, timeout=10) as response:
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return exc.code, json.loads(exc.read() or b"null")
            except (urllib.error.URLError, http.client.HTTPException, OSError):
                pass  # the server is down or was killed mid-request: try again
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.user}: {method} {path} got no answer")
            time.sleep(0.05)

    def run(self) -> None:
        try:
            status, _ = self._call(
                "POST", "/api/login", {"user": self.user, "credential": self.credential}
            )
            assert status == 200, status
            while True:
                status, body = self._call("GET", "/api/sessions/1/current")
                if status == 401:  # a restart does not end sessions, but say so if it did
                    raise AssertionError(f"{self.user}: signed out by a restart")
                case = body["case"]
                if case is None:
                    return
                status, reply = self._call("POST", f"/api/cases/{case['code']}/answer", ANSWER)
                if status == 201:
                    self.acknowledged.append(case["code"])
                elif not (status == 409 and "final" in json.dumps(reply)):
                    raise AssertionError(f"{self.user}: answer got {status} {reply}")
        except Exception as exc:  # reported by the test, with the reader's name
            self.error = f"{type(exc).__name__}: {exc}"


def test_twenty_readers_lose_nothing_when_the_server_is_killed(tmp_path: Path) -> None:
    cohort = make_cohort(tmp_path / "inputs", n_patients=6)
    study = tmp_path / "study"
    build_study(cohort.manifest, cohort.manifest.parent, cohort.synthetic, READERS, study,
                seed=5, washout_days=0, start=None)  # fmt: skip
    with (key_dir(study) / "credentials.csv").open(newline="") as handle:
        credentials = {row["user"]: row["credential"] for row in csv.DictReader(handle)}
    plan = load_plan(study)
    server = Server(study, free_port(), tmp_path / "server.log")
    server.start()
    readers = [Reader(server.url, user, credentials[user]) for user in READERS]
    try:
        for reader in readers:
            reader.start()
        kills = 0
        for _ in range(3):  # kill while answers are in flight, then bring it back
            target = sum(len(r.acknowledged) for r in readers) + 15
            deadline = time.monotonic() + 60
            while sum(len(r.acknowledged) for r in readers) < target:
                if not any(r.is_alive() for r in readers) or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            if not any(r.is_alive() for r in readers):
                break
            server.kill()
            kills += 1
            time.sleep(0.3)
            server.start()
        for reader in readers:
            reader.join(timeout=GIVE_UP_S)
        assert kills >= 2, "the readers finished before the server could be killed twice"
        assert [r.error for r in readers if r.error] == []

        admin = Reader(server.url, "admin", credentials["admin"])
        status, _ = admin._call(
            "POST", "/api/login", {"user": "admin", "credential": credentials["admin"]}
        )
        assert status == 200
        for reader in readers:
            status, saved = admin._call("GET", f"/api/readers/{reader.user}/answers")
            assert status == 200, saved
            codes = [answer["case"] for answer in saved]
            expected = list(plan.sessions[reader.user][0].cases)
            assert codes == expected, reader.user  # all of session 1, once each, in order
            assert set(reader.acknowledged) <= set(codes)  # nothing acknowledged was lost
    finally:
        server.kill()
