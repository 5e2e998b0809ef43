"""Where a reader stands: which session is open, which case comes next. Pure functions.

Session 1 opens at its planned time. Session 2 opens when session 1 is complete and the washout
has passed both since the planned time and since the reader's last session-1 answer, so a
reader who finishes session 1 late still gets the full washout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cemsynth.reader_study.study import StudyPlan, parse_time

SessionStatus = Literal["locked", "open", "complete"]


@dataclass(frozen=True)
class SessionState:
    """A reader's session now: status, effective open time (None while it cannot be known),
    counts, the code of the next case to read (None when complete or locked) and why it is
    locked."""

    number: int
    status: SessionStatus
    opens_at: datetime | None
    n_cases: int
    n_answered: int
    next_case: str | None
    reason: str


def session_states(
    plan: StudyPlan, reader: str, answered: dict[str, str], now: datetime
) -> list[SessionState]:
    """States of ``reader``'s sessions in order; ``answered`` maps case code -> answer time."""
    states: list[SessionState] = []
    previous: SessionState | None = None
    previous_last: datetime | None = None
    for session in plan.sessions[reader]:
        done = [code for code in session.cases if code in answered]
        pending = [code for code in session.cases if code not in answered]
        opens_at: datetime | None = session.opens_at
        reason = ""
        if previous is not None and previous.status != "complete":
            opens_at = None
            reason = f"finish session {previous.number} first"
        elif previous_last is not None:
            opens_at = max(session.opens_at, previous_last + timedelta(days=plan.washout_days))
        status: SessionStatus
        if not pending:
            status = "complete"
        elif opens_at is not None and now >= opens_at:
            status = "open"
        else:
            status = "locked"
            if opens_at is not None:
                reason = f"opens at {opens_at.isoformat()} (washout)"
        state = SessionState(
            number=session.number,
            status=status,
            opens_at=opens_at,
            n_cases=len(session.cases),
            n_answered=len(done),
            next_case=pending[0] if status == "open" else None,
            reason=reason,
        )
        states.append(state)
        previous = state
        times = [parse_time(answered[code]) for code in done]
        previous_last = max(times) if times else None
    return states


def locate(plan: StudyPlan, reader: str, case_code: str) -> tuple[int, int] | None:
    """(session number, 1-based position) of ``case_code`` in ``reader``'s plan, or None."""
    for session in plan.sessions.get(reader, ()):
        if case_code in session.cases:
            return session.number, session.cases.index(case_code) + 1
    return None
