"""The analytics refresh of one program: its steps in order, with progress in the cache.

`REFRESH_STEPS` is the list of steps; each is a `RefreshStep` whose `run(program=..., as_of=...,
progress=...)` computes one part and returns a summary: the member figures and RFM segments, then the CLV
fit and predictions (which read the figures), then the dashboard's panels. Every step computes as of the one
`as_of` of the refresh (default: now; a past date after an import of history), so every figure is as of it.

Progress is kept under a per-program cache key (`analytics_refresh_status`), so the manager API can show it
while a worker runs the refresh: the state (queued, running, done, failed), the current step and, per step,
done/total with its start and end times. The as-of of the last finished refresh is kept beside it, without
expiry (`analytics_as_of`): the manager API's figures default their windows to it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.core.cache import cache
from django.utils import timezone

from analytics.dashboard.panels import dashboard_panels_store
from analytics.lifetime import clv_refresh
from analytics.members import member_analytics_refresh
from analytics.selectors import as_of_key, status_key
from members.models import Program

STATUS_SECONDS = 7 * 24 * 3600  # how long the last refresh's status is kept
Progress = Callable[[int, int], None]  # (done, total) of the current step


class StepFunction(Protocol):
    def __call__(self, *, program: Program, as_of: datetime, progress: Progress) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RefreshStep:
    name: str
    label: str
    run: StepFunction


def member_figures_step(*, program: Program, as_of: datetime, progress: Progress) -> dict[str, Any]:
    """Purchase figures, RFM scores and segments of every member."""
    members = program.members.count()
    progress(0, members)
    result = member_analytics_refresh(program=program, as_of=as_of)
    progress(result.members, result.members)
    return result.as_dict()


def clv_step(*, program: Program, as_of: datetime, progress: Progress) -> dict[str, Any]:
    """BG/NBD and Gamma-Gamma fits on the purchases, and every member's predicted CLV (after the figures)."""
    progress(0, 1)
    result = clv_refresh(program=program, as_of=as_of)
    progress(1, 1)
    return {"converged": result.fit.converged, "members_written": result.written, "message": result.fit.message}


def dashboard_step(*, program: Program, as_of: datetime, progress: Progress) -> dict[str, Any]:
    """The dashboard's panels, computed once and kept in the cache for the admin page."""
    progress(0, 1)
    panels, _ = dashboard_panels_store(program, as_of)
    progress(1, 1)
    return {"panels": len(panels)}


# The steps of a refresh, in order. Append a step to add it to every refresh (scheduled and on demand).
REFRESH_STEPS: list[RefreshStep] = [
    RefreshStep("members", "Member figures, RFM scores and segments", member_figures_step),
    RefreshStep("clv", "Customer lifetime value", clv_step),
    RefreshStep("dashboard", "Dashboard charts", dashboard_step),
]


# --- Status -----------------------------------------------------------------------------------------


def _now() -> str:
    return timezone.now().isoformat()


def _save(program: Program, status: dict[str, Any]) -> None:
    status["updated_at"] = _now()
    cache.set(status_key(program.pk), status, timeout=STATUS_SECONDS)


def analytics_refresh_queued(program: Program, as_of: datetime | None = None) -> dict[str, Any]:
    """Marks a refresh as queued (before a worker picks the task up), as of `as_of` if given; returns the
    status."""
    status: dict[str, Any] = {"state": "queued", "step": None, "steps": [], "queued_at": _now()}
    if as_of is not None:
        status["as_of"] = as_of.isoformat()
    _save(program, status)
    return status


def _new_status(as_of: datetime) -> dict[str, Any]:
    steps = [
        {"name": step.name, "label": step.label, "done": 0, "total": None, "started_at": None, "finished_at": None}
        for step in REFRESH_STEPS
    ]
    return {"state": "running", "as_of": as_of.isoformat(), "step": None, "steps": steps, "started_at": _now()}


# --- The refresh ------------------------------------------------------------------------------------


def analytics_refresh(
    *, program: Program, as_of: datetime | None = None, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Runs every step of `REFRESH_STEPS` for the program, in order, as of `as_of` (default: now).

    The status in the cache follows each step; `progress`, if given, is called with it too. A failing step
    marks the refresh failed (with the error) and re-raises; steps after it do not run. Returns the final
    status, with each step's summary under `results`."""
    as_of = as_of or timezone.now()
    status = _new_status(as_of)
    results: dict[str, Any] = {}

    def publish() -> None:
        _save(program, status)
        if progress is not None:
            progress(status)

    publish()
    for step, state in zip(REFRESH_STEPS, status["steps"], strict=True):

        def step_progress(done: int, total: int, state: dict[str, Any] = state) -> None:
            state.update(done=done, total=total)
            publish()

        status["step"] = step.name
        state["started_at"] = _now()
        publish()
        try:
            results[step.name] = step.run(program=program, as_of=as_of, progress=step_progress)
        except Exception as exc:
            status.update(state="failed", error=f"{step.name}: {exc}", finished_at=_now())
            publish()
            raise
        state["finished_at"] = _now()
        publish()
    status.update(state="done", step=None, finished_at=_now(), results=results)
    cache.set(as_of_key(program.pk), status["as_of"], timeout=None)
    publish()
    return status
