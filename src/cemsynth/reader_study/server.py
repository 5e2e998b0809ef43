"""``reader-study serve``: the reading app (FastAPI). Build it with :func:`create_app`.

Access rules, enforced here and not in the browser:

* every ``/api`` route except sign-in needs a valid signed token (cookie or Bearer header);
  a missing, forged or expired token gets 401;
* a reader sees only their own sessions and only the current case of an open session
  (its images included); anything else (another reader's data, the key, admin routes) is 403;
* answers are final: a second answer for a case is 409, and cases are answered in order;
* admin routes (progress, ``scores.csv``, ``truth.csv``, ``key.csv``) need the admin role.
"""

# No "from __future__ import annotations": FastAPI reads the dependency annotations, some of
# which are local to create_app, at definition time.

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from cemsynth.reader_study.auth import (
    TokenClaims,
    TokenError,
    check_credential,
    issue_token,
    verify_token,
)
from cemsynth.reader_study.defaults import (
    COMMENT_MAX_CHARS,
    CONFIDENCE_MAX,
    CONFIDENCE_MIN,
    TOKEN_TTL_HOURS,
)
from cemsynth.reader_study.deid import read_png16
from cemsynth.reader_study.export import scores_csv
from cemsynth.reader_study.progress import SessionState, locate, session_states
from cemsynth.reader_study.store import Answer, AnswerStore, DuplicateAnswer
from cemsynth.reader_study.study import (
    db_path,
    format_time,
    images_dir,
    key_dir,
    load_auth,
    load_key,
    load_plan,
)
from cemsynth.vocabulary import BpeGrade, View

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_COOKIE = "rs_token"
_CODE = re.compile(r"^[0-9A-Z]{4,16}$")
_DRAFT_MAX_BYTES = 16_000
#: Largest request body per route, checked from Content-Length before any byte is read (an
#: unauthenticated 200 MB POST once grew the server by 0.7 GB before its 401). Other routes
#: take no body.
_BODY_LIMITS = (
    ("POST", re.compile(r"^/api/login$"), 4_096),
    ("POST", re.compile(r"^/api/logout$"), 1_024),
    ("POST", re.compile(r"^/api/cases/[^/]+/answer$"), 4 * COMMENT_MAX_CHARS + 8_192),
    ("PUT", re.compile(r"^/api/cases/[^/]+/draft$"), _DRAFT_MAX_BYTES),
)
_NO_BODY = 0


def body_limit(method: str, path: str) -> int:
    """The largest request body in bytes that ``method path`` accepts."""
    for route_method, pattern, limit in _BODY_LIMITS:
        if method == route_method and pattern.match(path):
            return limit
    return _NO_BODY


class BodyLimit:
    """ASGI middleware: refuse a request whose body is larger than its route takes, before
    the body is read. A body with no Content-Length (chunked) is read up to the limit only,
    then refused or handed to the app whole."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = True
            if too_large:
                await _refuse(send, limit)
                return
        if declared is not None:
            await self.app(scope, receive, send)  # the server delivers no more than declared
            return
        # no Content-Length (chunked): read at most the limit, then hand the app a replay
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > limit:
                await _refuse(send, limit)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                message: dict[str, Any] = await receive()
                return message
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body too large (at most {limit} bytes)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_SECURITY_HEADERS = {
    # Everything comes from this server: no CDN, no inline script, works offline.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(max_length=64)
    credential: str = Field(max_length=256)


class Artifacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    halo: bool = False
    hallucination: bool = False
    other: bool = False


class Mark(BaseModel):
    """A lesion location: view and position in image pixels (column x, row y)."""

    model_config = ConfigDict(extra="forbid")
    view: View
    x: float = Field(ge=0)
    y: float = Field(ge=0)


class AnswerIn(BaseModel):
    """A reader's answer for one case."""

    model_config = ConfigDict(extra="forbid")
    bpe: BpeGrade
    lesion: Literal[0, 1]
    confidence: int = Field(ge=CONFIDENCE_MIN, le=CONFIDENCE_MAX)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    comment: str = Field(default="", max_length=COMMENT_MAX_CHARS)
    marks: list[Mark] = Field(default_factory=list, max_length=20)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _state_json(state: SessionState) -> dict[str, Any]:
    return {
        "number": state.number,
        "status": state.status,
        "opens_at": None if state.opens_at is None else format_time(state.opens_at),
        "n_cases": state.n_cases,
        "n_answered": state.n_answered,
        "reason": state.reason,
    }


def create_app(
    root: Path,
    *,
    now: Callable[[], datetime] = _utc_now,
    token_ttl_hours: float = TOKEN_TTL_HOURS,
) -> FastAPI:
    """The app for the study at ``root``. ``now`` is the clock (UTC), replaceable in tests."""
    plan = load_plan(root)
    auth = load_auth(root)
    key = load_key(root)
    store = AnswerStore(db_path(root), plan.study_id)
    image_owner = plan.image_owner()
    ttl_s = token_ttl_hours * 3600.0

    app = FastAPI(title="cemsynth reader study", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            host = request.headers.get("host", "")
            if origin and urlsplit(origin).netloc != host:
                return JSONResponse({"detail": "cross-origin request refused"}, status_code=403)
        response: Response = await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def claims(request: Request) -> TokenClaims:
        token = request.cookies.get(TOKEN_COOKIE, "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        if not token:
            raise HTTPException(401, "sign in first")
        try:
            found = verify_token(auth.secret, token, now().timestamp())
        except TokenError as exc:
            raise HTTPException(401, f"sign in again ({exc})") from exc
        record = auth.users.get(found.user)
        if record is None or record.role != found.role:
            raise HTTPException(401, "sign in again (unknown user)")
        return found

    Claims = Annotated[TokenClaims, Depends(claims)]

    def reader(user: Claims) -> str:
        if user.role != "reader":
            raise HTTPException(403, "readers only")
        return user.user

    def admin(user: Claims) -> str:
        if user.role != "admin":
            raise HTTPException(403, "admin only")
        return user.user

    Reader = Annotated[str, Depends(reader)]
    Admin = Annotated[str, Depends(admin)]

    def states(name: str) -> list[SessionState]:
        return session_states(plan, name, store.answered(name), now())

    def current_case(name: str, case_code: str, not_current: int = 409) -> tuple[SessionState, int]:
        """The open session whose current case is ``case_code`` and its position.

        403 when the case is not the reader's or its session is locked; ``not_current`` (409
        for answers, 403 for images) when it is not the case the reader is on.
        """
        where = locate(plan, name, case_code)
        if where is None:
            raise HTTPException(403, "not one of your cases")
        state = states(name)[where[0] - 1]
        if state.status == "locked":
            raise HTTPException(403, f"session {state.number} is locked: {state.reason}")
        if state.next_case != case_code:
            raise HTTPException(not_current, "this case is not the current case of its session")
        return state, where[1]

    # --- pages ---------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # --- sign-in -------------------------------------------------------------------------

    @app.post("/api/login")
    def login(body: Login, response: Response) -> dict[str, Any]:
        record = auth.users.get(body.user)
        if not check_credential(record, body.credential) or record is None:
            raise HTTPException(401, "unknown user or wrong credential")
        issued = now().timestamp()
        token = issue_token(auth.secret, body.user, record.role, issued, ttl_s)
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=int(ttl_s),
            httponly=True,
            samesite="strict",
            path="/",
        )
        return {"user": body.user, "role": record.role, "expires": issued + ttl_s}

    @app.post("/api/logout")
    def logout(response: Response) -> dict[str, bool]:
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return {"signed_out": True}

    @app.get("/api/me")
    def me(user: Claims) -> dict[str, Any]:
        return {"user": user.user, "role": user.role, "expires": user.expires}

    # --- reading -------------------------------------------------------------------------

    @app.get("/api/sessions")
    def sessions(name: Reader) -> list[dict[str, Any]]:
        return [_state_json(state) for state in states(name)]

    @app.get("/api/sessions/{number}/current")
    def current(number: int, name: Reader) -> dict[str, Any]:
        all_states = states(name)
        if not 1 <= number <= len(all_states):
            raise HTTPException(404, "no such session")
        state = all_states[number - 1]
        if state.status == "locked":
            raise HTTPException(403, f"session {number} is locked: {state.reason}")
        body: dict[str, Any] = {"session": _state_json(state), "case": None}
        if state.next_case is not None:
            case = plan.cases[state.next_case]
            body["case"] = {
                "code": state.next_case,
                "position": state.n_answered + 1,
                "laterality": case.laterality,
                "images": case.images,
                "draft": store.draft(name, state.next_case),
            }
        return body

    @functools.lru_cache(maxsize=8)
    def image_bytes(image_code: str) -> tuple[bytes, int, int]:
        pixels = read_png16(images_dir(root) / f"{image_code}.png")
        return pixels.astype("<u2").tobytes(), int(pixels.shape[1]), int(pixels.shape[0])

    @app.get("/api/images/{image_code}")
    def image(image_code: str, user: Claims) -> Response:
        """Pixels as little-endian uint16, row-major; width and height in headers."""
        if not _CODE.match(image_code) or image_code not in image_owner:
            raise HTTPException(404, "no such image")
        if user.role != "admin":
            current_case(user.user, image_owner[image_code], not_current=403)
        data, width, height = image_bytes(image_code)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"X-Image-Width": str(width), "X-Image-Height": str(height)},
        )

    @app.put("/api/cases/{case_code}/draft", status_code=204)
    async def save_draft(case_code: str, request: Request, name: Reader) -> Response:
        body = await request.body()
        if len(body) > _DRAFT_MAX_BYTES:
            raise HTTPException(413, "draft too large")
        try:
            draft = json.loads(body)
        except ValueError as exc:
            raise HTTPException(422, "draft must be a JSON object") from exc
        if not isinstance(draft, dict):
            raise HTTPException(422, "draft must be a JSON object")
        current_case(name, case_code)
        store.save_draft(name, case_code, draft, format_time(now()))
        return Response(status_code=204)

    @app.post("/api/cases/{case_code}/answer", status_code=201)
    def answer(case_code: str, body: AnswerIn, name: Reader) -> dict[str, Any]:
        if locate(plan, name, case_code) is not None and case_code in store.answered(name):
            raise HTTPException(409, "this case is already answered; answers are final")
        state, position = current_case(name, case_code)
        if body.lesion == 0 and body.marks:
            raise HTTPException(422, "lesion marks given but lesion is 'no'")
        saved = Answer(
            reader=name,
            case_code=case_code,
            session=state.number,
            position=position,
            bpe=body.bpe,
            lesion=body.lesion,
            confidence=body.confidence,
            artifact_halo=int(body.artifacts.halo),
            artifact_hallucination=int(body.artifacts.hallucination),
            artifact_other=int(body.artifacts.other),
            comment=body.comment.strip(),
            marks=[mark.model_dump() for mark in body.marks],
            answered_at=format_time(now()),
        )
        try:
            store.save_answer(saved)
        except DuplicateAnswer as exc:
            raise HTTPException(409, "this case is already answered; answers are final") from exc
        return {"saved": True, "case": case_code, "session": state.number}

    @app.get("/api/readers/{reader_name}/answers")
    def reader_answers(reader_name: str, user: Claims) -> list[dict[str, Any]]:
        """A reader's own answers (no truth, no image type); other readers get 403."""
        if user.role != "admin" and user.user != reader_name:
            raise HTTPException(403, "you can only see your own answers")
        if reader_name not in plan.sessions:
            raise HTTPException(404, "no such reader")
        return [
            {
                "case": a.case_code,
                "session": a.session,
                "position": a.position,
                "bpe": a.bpe,
                "lesion": a.lesion,
                "confidence": a.confidence,
                "answered_at": a.answered_at,
            }
            for a in store.answers(reader_name)
        ]

    # --- admin ---------------------------------------------------------------------------

    @app.get("/api/admin/progress")
    def progress(_: Admin) -> dict[str, Any]:
        return {
            "study_id": plan.study_id,
            "readers": {name: [_state_json(s) for s in states(name)] for name in plan.readers},
        }

    @app.get("/api/admin/scores.csv")
    def export_scores(_: Admin) -> PlainTextResponse:
        return _csv_download(scores_csv(store.answers(), key), "scores.csv")

    @app.get("/api/admin/truth.csv")
    def export_truth(_: Admin) -> PlainTextResponse:
        return _csv_download((key_dir(root) / "truth.csv").read_text("utf-8"), "truth.csv")

    @app.get("/api/admin/key.csv")
    def export_key(_: Admin) -> PlainTextResponse:
        return _csv_download((key_dir(root) / "key.csv").read_text("utf-8"), "key.csv")

    return app


def _csv_download(text: str, name: str) -> PlainTextResponse:
    return PlainTextResponse(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
