"""The reading app end to end: a real server process on loopback, driven in headless Chromium.

Uses Debian's ``chromium`` (installed by ``scripts/install-system-deps.sh``) through the
Playwright Python package; skipped, with that reason, only when the browser is absent.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from cemsynth.cli import main
from cemsynth.reader_study.auth import issue_token
from cemsynth.reader_study.build import build_study
from cemsynth.reader_study.study import key_dir, load_auth

from .conftest import Server, free_port, make_cohort

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    cohort = make_cohort(tmp_path / "inputs", n_patients=3)
    build_study(
        cohort.manifest,
        cohort.manifest.parent,
        cohort.synthetic,
        ["R1", "R2"],
        tmp_path / "study",
        seed=3,
        washout_days=0,
        start=None,
    )  # opens now
    running = Server(tmp_path / "study", free_port(), tmp_path / "server.log")
    running.start()
    yield running
    running.kill()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed; run scripts/install-system-deps.sh")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _credentials(study: Path) -> dict[str, str]:
    with (key_dir(study) / "credentials.csv").open(newline="") as handle:
        return {row["user"]: row["credential"] for row in csv.DictReader(handle)}


def _answer(page: Page, bpe: str, lesion: str, confidence: str) -> None:
    page.check(f"input[name=bpe][value={bpe}]")
    page.check(f"input[name=lesion][value='{lesion}']")
    page.check(f"input[name=confidence][value='{confidence}']")


def _wait_case(page: Page, position: int) -> None:
    page.wait_for_selector(f"#case-position:text-matches('^Case {position} of 5$')")
    page.wait_for_selector("#canvas-CC[data-loaded=true]")
    page.wait_for_selector("#canvas-MLO[data-loaded=true]")


def test_reading_app_in_chromium(server: Server, browser: Browser, tmp_path: Path) -> None:
    creds = _credentials(server.study)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    outside: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))

    # sign in: a wrong credential first
    page.goto(server.url + "/")
    page.fill("#login-user", "R1")
    page.fill("#login-credential", "wrong")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:text('Unknown user or wrong credential.')")
    page.fill("#login-credential", creds["R1"])
    page.click("#login-submit")
    page.wait_for_selector("#sessions-view:not([hidden])")
    assert "finish session 1 first" in page.inner_text("#sessions")
    page.click("button[data-session='1']")
    _wait_case(page, 1)

    # the viewer: window/level changes the rendered pixels; zoom and pan work without errors
    def snapshot() -> str:
        return str(page.evaluate("document.querySelector('#canvas-CC').toDataURL()"))

    before = snapshot()
    page.locator("#window").fill("2000")
    assert snapshot() != before
    box = page.locator("#canvas-CC").bounding_box()
    assert box is not None
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, -400)
    page.mouse.down()
    page.mouse.move(centre[0] + 30, centre[1] + 10)
    page.mouse.up()
    page.click("#reset-view")

    # case 1: full answer with a lesion mark
    _answer(page, "b", "1", "4")
    page.click("#mark-mode")
    page.mouse.click(*centre)
    page.check("#artifact-halo")
    page.fill("#comment", "rim enhancement")
    page.click("#submit-answer")
    _wait_case(page, 2)

    # case 2: a half-filled form survives a reload (kept as a draft on the server)
    with page.expect_response(lambda r: r.url.endswith("/draft") and r.status == 204):
        page.check("input[name=bpe][value=c]")
    page.reload()
    _wait_case(page, 2)
    assert page.is_checked("input[name=bpe][value=c]")
    page.wait_for_selector("#status:text('Your unfinished answer was restored.')")
    _answer(page, "c", "0", "3")
    page.click("#submit-answer")
    _wait_case(page, 3)

    # the server dies mid-session: the answer is refused visibly, nothing saved is lost
    _answer(page, "a", "0", "5")
    server.kill()
    page.click("#submit-answer")
    page.wait_for_selector("#status.bad:text-matches('Not saved')")
    server.start()
    page.click("#submit-answer")
    _wait_case(page, 4)
    saved = page.request.get(server.url + "/api/readers/R1/answers").json()
    assert [(a["position"], a["bpe"]) for a in saved] == [(1, "b"), (2, "c"), (3, "a")]
    page.reload()
    _wait_case(page, 4)  # resumes where it stopped
    for position in (4, 5):
        _answer(page, "d", "1", "2")
        page.click("#submit-answer")
        if position == 4:
            _wait_case(page, 5)
    page.wait_for_selector("#done-text:text('All 5 cases of session 1 are saved.')")
    page.click("#done-back")
    page.wait_for_selector("button[data-session='2']")  # washout 0 in this study

    # what a reader cannot reach, even through the API
    for path in (
        "/api/readers/R2/answers",
        "/api/admin/key.csv",
        "/api/admin/truth.csv",
        "/api/admin/scores.csv",
        "/api/admin/progress",
    ):
        assert page.request.get(server.url + path).status == 403, path

    # forged and expired tokens
    secret = load_auth(server.study).secret
    token = context.cookies()[0]["value"]
    body, signature = token.split(".")
    expired = issue_token(secret, "R1", "reader", time.time() - 7200, 3600)
    for bad in (
        body + "." + signature[::-1],
        expired,
        issue_token("00" * 32, "R1", "reader", time.time(), 3600),
    ):
        other = browser.new_context()
        other.add_cookies([{"name": "rs_token", "value": bad, "url": server.url}])
        intruder = other.new_page()
        intruder.goto(server.url + "/")
        intruder.wait_for_selector("#login-view:not([hidden])")
        assert intruder.request.get(server.url + "/api/me").status == 401
        other.close()

    # the admin sees progress and exports scores.csv, which feeds the statistics directly
    admin_context = browser.new_context()
    admin = admin_context.new_page()
    admin.goto(server.url + "/")
    admin.fill("#login-user", "admin")
    admin.fill("#login-credential", creds["admin"])
    admin.click("#login-submit")
    admin.wait_for_selector("#admin-progress td:text('5 / 5')")
    exported = admin.request.get(server.url + "/api/admin/scores.csv")
    assert exported.status == 200
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    assert len(rows) == 5 and {r["reader"] for r in rows} == {"R1"}
    first = rows[0]
    assert (first["bpe"], first["lesion"], first["confidence"], first["artifact_halo"]) == (
        "b",
        "1",
        "4",
        "1",
    )
    assert first["comment"] == "rim enhancement" and len(json.loads(first["lesion_marks"])) == 1
    scores = tmp_path / "scores.csv"
    scores.write_text(exported.text())
    main(
        [
            "reader-study",
            "stats",
            "--scores",
            str(scores),
            "--truth",
            str(key_dir(server.study) / "truth.csv"),
            "--out",
            str(tmp_path / "stats"),
            "--bootstrap",
            "50",
        ]
    )
    summary = json.loads((tmp_path / "stats" / "summary.json").read_text())
    assert summary["lesion"]["R1"]["clinical"]["n"] + summary["lesion"]["R1"]["synthetic"]["n"] == 5
    admin_context.close()

    assert outside == [], "the app must not reach outside the server"
    assert errors == []
    context.close()
