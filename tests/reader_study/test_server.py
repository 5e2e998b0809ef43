"""The reading app's API in-process (FastAPI TestClient) with a controllable clock."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cemsynth.reader_study.auth import issue_token, new_secret
from cemsynth.reader_study.build import BuildResult
from cemsynth.reader_study.server import TOKEN_COOKIE, create_app
from cemsynth.reader_study.study import key_dir, load_auth, load_key, load_plan

from .conftest import START, StudyBuilder

ANSWER = {
    "bpe": "b",
    "lesion": 1,
    "confidence": 4,
    "artifacts": {"halo": True},
    "comment": "=cmd|' /C calc'!A0",
    "marks": [{"view": "CC", "x": 10, "y": 20}],
}


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def credentials(root: Path) -> dict[str, str]:
    with (key_dir(root) / "credentials.csv").open(newline="") as handle:
        return {row["user"]: row["credential"] for row in csv.DictReader(handle)}


@pytest.fixture
def study(study_copy: BuildResult) -> BuildResult:
    return study_copy


@pytest.fixture
def clock() -> Clock:
    return Clock(START + timedelta(hours=1))


def client_for(
    root: Path, clock: Clock, user: str | None = None, ttl_hours: float = 8.0
) -> TestClient:
    client = TestClient(create_app(root, now=clock, token_ttl_hours=ttl_hours))
    if user is not None:
        response = client.post(
            "/api/login", json={"user": user, "credential": credentials(root)[user]}
        )
        assert response.status_code == 200, response.text
    return client


def answer_all(client: TestClient, session: int, clock: Clock) -> int:
    count = 0
    while True:
        body = client.get(f"/api/sessions/{session}/current").json()
        if body["case"] is None:
            return count
        clock.moment += timedelta(minutes=1)
        response = client.post(f"/api/cases/{body['case']['code']}/answer", json=ANSWER)
        assert response.status_code == 201, response.text
        count += 1


def test_sign_in_and_credentials(study: BuildResult, clock: Clock) -> None:
    client = client_for(study.root, clock)
    assert client.get("/api/me").status_code == 401
    wrong = client.post("/api/login", json={"user": "R1", "credential": "guess"})
    assert wrong.status_code == 401
    assert client.post("/api/login", json={"user": "nobody", "credential": "x"}).status_code == 401
    assert client.post("/api/login", json={"user": "R1"}).status_code == 422
    good = client.post(
        "/api/login", json={"user": "R1", "credential": credentials(study.root)["R1"]}
    )
    assert good.status_code == 200 and good.json()["role"] == "reader"
    cookie = good.cookies[TOKEN_COOKIE]
    assert "httponly" in good.headers["set-cookie"].lower()
    assert "samesite=strict" in good.headers["set-cookie"].lower()
    assert client.get("/api/me").json()["user"] == "R1"
    # forged: another payload with the old signature; or signed with another secret
    body, signature = cookie.split(".")
    forged = issue_token(new_secret(), "R1", "admin", clock().timestamp(), 3600)
    for token in (forged, body[:-2] + "xx." + signature, "garbage", cookie + "x"):
        response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
    # a reader's token with a forged admin role does not open admin routes
    secret = load_auth(study.root).secret
    upgraded = issue_token(secret, "R1", "admin", clock().timestamp(), 3600)
    assert (
        client.get(
            "/api/admin/progress", headers={"Authorization": f"Bearer {upgraded}"}
        ).status_code
        == 401
    )
    # expired
    clock.moment += timedelta(hours=9)
    assert client.get("/api/me").status_code == 401
    assert "expired" in client.get("/api/me").json()["detail"]


def test_reader_flow_order_duplicates_and_drafts(study: BuildResult, clock: Clock) -> None:
    client = client_for(study.root, clock, "R1")
    plan = load_plan(study.root)
    sessions = client.get("/api/sessions").json()
    assert [s["status"] for s in sessions] == ["open", "locked"]
    assert client.get("/api/sessions/2/current").status_code == 403
    current = client.get("/api/sessions/1/current").json()["case"]
    assert current["code"] == plan.sessions["R1"][0].cases[0]
    assert set(current) == {
        "code",
        "position",
        "laterality",
        "images",
        "draft",
    }  # no truth, no type
    image = client.get(f"/api/images/{current['images']['CC']}")
    assert image.status_code == 200 and len(image.content) == 64 * 48 * 2
    assert (image.headers["x-image-width"], image.headers["x-image-height"]) == ("48", "64")
    later = plan.cases[plan.sessions["R1"][0].cases[1]]
    assert client.get(f"/api/images/{later.images['CC']}").status_code == 403  # not yet
    locked = plan.cases[plan.sessions["R1"][1].cases[0]]
    assert client.get(f"/api/images/{locked.images['MLO']}").status_code == 403
    assert client.get("/api/images/NOTACODE").status_code == 404
    # drafts survive until the answer is given
    draft = {"bpe": "c", "lesion": None}
    assert client.put(f"/api/cases/{current['code']}/draft", json=draft).status_code == 204
    assert client.get("/api/sessions/1/current").json()["case"]["draft"] == draft
    # invalid answers are refused and nothing is stored
    for bad in (
        {**ANSWER, "bpe": "e"},
        {**ANSWER, "confidence": 0},
        {**ANSWER, "lesion": 2},
        {**ANSWER, "lesion": 0},
        {**ANSWER, "truth": "x"},
        {"bpe": "a"},
    ):
        assert client.post(f"/api/cases/{current['code']}/answer", json=bad).status_code == 422
    assert client.get("/api/readers/R1/answers").json() == []
    # answering out of order
    assert (
        client.post(f"/api/cases/{plan.sessions['R1'][0].cases[1]}/answer", json=ANSWER).status_code
        == 409
    )
    assert client.post(f"/api/cases/{current['code']}/answer", json=ANSWER).status_code == 201
    again = client.post(f"/api/cases/{current['code']}/answer", json={**ANSWER, "bpe": "d"})
    assert again.status_code == 409 and "final" in again.json()["detail"]
    mine = client.get("/api/readers/R1/answers").json()
    assert [(a["case"], a["bpe"]) for a in mine] == [(current["code"], "b")]
    nxt = client.get("/api/sessions/1/current").json()["case"]
    assert nxt["position"] == 2 and nxt["draft"] is None


def test_access_control(study: BuildResult, clock: Clock) -> None:
    reader = client_for(study.root, clock, "R1")
    other = client_for(study.root, clock, "R2")
    answer_all(other, 1, clock)
    assert reader.get("/api/readers/R2/answers").status_code == 403
    for path in (
        "/api/admin/progress",
        "/api/admin/scores.csv",
        "/api/admin/truth.csv",
        "/api/admin/key.csv",
    ):
        assert reader.get(path).status_code == 403, path
    assert reader.get("/key/truth.csv").status_code == 404
    assert reader.get("/static/../key/truth.csv").status_code == 404
    assert reader.get("/static/%2e%2e/key/key.csv").status_code == 404
    admin = client_for(study.root, clock, "admin")
    assert admin.get("/api/sessions").status_code == 403  # admins do not read
    assert admin.get("/api/readers/R2/answers").status_code == 200
    # cross-site form posts are refused
    forged = reader.post(
        "/api/cases/X/answer", json=ANSWER, headers={"Origin": "http://evil.example"}
    )
    assert forged.status_code == 403
    page = reader.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, works offline


def test_washout_is_enforced(study: BuildResult, clock: Clock) -> None:
    client = client_for(study.root, clock, "R1", ttl_hours=24 * 365)
    clock.moment = START + timedelta(days=3)
    answer_all(client, 1, clock)
    last = clock.moment
    sessions = client.get("/api/sessions").json()
    assert sessions[0]["status"] == "complete" and sessions[1]["status"] == "locked"
    # 14 days after the last session-1 answer, not after the planned opening
    clock.moment = START + timedelta(days=15)
    assert client.get("/api/sessions/2/current").status_code == 403
    clock.moment = last + timedelta(days=14) - timedelta(seconds=1)
    assert client.get("/api/sessions/2/current").status_code == 403
    clock.moment = last + timedelta(days=14)
    assert client.get("/api/sessions/2/current").status_code == 200


def test_session_two_waits_for_session_one(build: StudyBuilder, clock: Clock) -> None:
    study = build(washout_days=0)
    client = client_for(study.root, clock, "R1")
    state = client.get("/api/sessions").json()[1]
    assert state["status"] == "locked" and "finish session 1" in state["reason"]
    answer_all(client, 1, clock)
    assert client.get("/api/sessions").json()[1]["status"] == "open"


def test_export_and_restart_keep_everything(study: BuildResult, clock: Clock) -> None:
    client = client_for(study.root, clock, "R1")
    answered = answer_all(client, 1, clock)
    # a new app on the same folder (a restarted server) sees every answer
    admin = client_for(study.root, clock, "admin")
    progress = admin.get("/api/admin/progress").json()["readers"]["R1"]
    assert progress[0]["n_answered"] == answered
    scores = admin.get("/api/admin/scores.csv")
    assert scores.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(scores.text)))
    key = load_key(study.root)
    assert len(rows) == answered
    for row in rows:
        entry = key[row["case_code"]]
        assert (row["patient_id"], row["laterality"], row["image_type"]) == (
            entry.patient_id,
            entry.laterality,
            entry.image_type,
        )
        assert row["comment"].startswith("'=")  # spreadsheet formula neutralised
        assert json.loads(row["lesion_marks"]) == [{"view": "CC", "x": 10.0, "y": 20.0}]
        assert row["artifact_halo"] == "1" and row["bpe"] == "b"
    truth = admin.get("/api/admin/truth.csv").text
    assert truth == (key_dir(study.root) / "truth.csv").read_text()


def test_answers_live_in_a_write_ahead_log_database(study: BuildResult, clock: Clock) -> None:
    """WAL mode: a reader's saved answer is durable while another connection reads."""
    import sqlite3

    from cemsynth.reader_study.study import db_path

    client = client_for(study.root, clock, "R1")
    answered = answer_all(client, 1, clock)
    db = sqlite3.connect(db_path(study.root))
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == answered > 0
    finally:
        db.close()


def test_request_bodies_are_capped_per_route_before_they_are_read(
    study: BuildResult, clock: Clock
) -> None:
    """An oversized body gets 413 from its Content-Length alone, signed in or not; a chunked
    one is cut off at the limit; bodies within the limit still reach the route."""
    from cemsynth.reader_study.server import body_limit

    client = TestClient(create_app(study.root, now=clock))
    login_limit = body_limit("POST", "/api/login")
    assert login_limit == 4_096
    assert body_limit("GET", "/api/me") == body_limit("POST", "/api/unknown") == 0
    big = b"x" * (login_limit + 1)
    response = client.post("/api/login", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "at most 4096 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(64):
            yield b"x" * 1024

    response = client.post("/api/login", content=chunks())
    assert response.status_code == 413
    # within the limit: the route answers (here: wrong credentials)
    response = client.post("/api/login", json={"user": "nobody", "credential": "wrong"})
    assert response.status_code == 401
    reader = client_for(study.root, clock, "R1")
    case = reader.get("/api/sessions/1/current").json()["case"]["code"]
    draft_limit = body_limit("PUT", f"/api/cases/{case}/draft")
    response = reader.put(f"/api/cases/{case}/draft", content=b"{" + b" " * draft_limit + b"}")
    assert response.status_code == 413
    answer = f"/api/cases/{case}/answer"
    response = reader.post(answer, content=b"x" * (body_limit("POST", answer) + 1))
    assert response.status_code == 413
