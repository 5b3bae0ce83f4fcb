"""One control cycle: collect -> optimize -> act. ``CycleRunner.run_cycle(now_s)``; time is an argument.

Called by :class:`controller.loop.CycleLoop` (timer and ``/invoke``), one cycle at a time. Each
stage runs under its own timeout; a failure is classified (transient / permanent), recorded in the
report, and skips every later stage, so a cycle never acts on a half-made plan. Whether the
collect was degraded or not, the actuator acts only on trusted servers (it enforces that).
The stages are a narrow ``Stages`` port: HTTP in production (``HttpStages``), fakes in tests.

The controller keeps the scale-down window (:mod:`controller.window`): before ``optimize`` each
server of the collected system gets the window's floor (``floorReplicas``); after ``update`` the
window records what each acted-on server needs. A cycle that fails before the actuator answers
leaves the window as it was.

It also keeps the load history (:mod:`controller.history`): after ``collect`` each server's rate is
entered and the history saved to its store; classes that ask for a forecast get it
(:mod:`controller.lookahead`) before ``optimize``, and a server left without one is held.

``HttpStages`` is the production port: ``GET /collect`` -> CollectResult; ``POST /optimize`` with the
system (inferno's JSON) -> Solution (``{"solution": {...}}`` accepted too); ``POST /update`` ->
UpdateResponse. The token (if any) goes to the actuator only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from contract.calibration import CalibrationData, CalibrationSummary
from contract.collect import CALIBRATION_PARAM, CollectResult
from contract.cycle import CollectedSummary, CycleReport, DecisionSummary, Stage, StageFailure
from contract.data.system import SystemData
from contract.solution import Solution
from contract.steps import StepCode
from contract.update import Outcome, UpdateRequest, UpdateResponse
from controller import calibrate, history, lookahead, window
from controller.history import HistoryStore, MemoryHistoryStore, ServerHistory
from controller.settings import ControllerSettings
from controller.window import WindowState
from plumbing.client import ErrorKind, JsonClient, UpstreamError, classify_exception

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger()
BAD_OUTCOMES = {Outcome.FAILED, Outcome.CONFLICT}
NO_HISTORY = "no stored load history (first start, or the store was emptied)"


class Stages(Protocol):
    async def collect(self) -> CollectResult: ...

    async def optimize(self, system: SystemData) -> Solution: ...

    async def update(self, request: UpdateRequest) -> UpdateResponse: ...


class CalibrationStore(Protocol):
    """Where the learned performance is kept between processes: the dynamic ConfigMap's
    ``calibration-data.json`` (read back by the collector)."""

    async def save(self, data: CalibrationData) -> None: ...


class _StageFailedError(Exception):
    def __init__(self, failure: StageFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def always_leader() -> bool:
    return True


class CycleRunner:
    """``is_leader`` is the seam for leader election (a Lease): a standby runs no stage at all."""

    def __init__(
        self,
        stages: Stages,
        settings: ControllerSettings,
        *,
        timer: Callable[[], float] = time.perf_counter,
        is_leader: Callable[[], bool] = always_leader,
        calibration_store: CalibrationStore | None = None,
        history_store: HistoryStore | None = None,
    ) -> None:
        self.stages = stages
        self.calibration = calibrate.EMPTY  # what each (model, accelerator) learned; see calibrate.py
        self.calibration_store = calibration_store
        self._saved: CalibrationData | None = None
        self.settings = settings
        self.is_leader = is_leader
        self._timer = timer  # monotonic, for stage durations only
        self._seq = 0
        self.window: WindowState = {}  # the scale-down window; the optimizer gets it as floorReplicas
        self._window_policy = settings.window_policy()
        self.history: dict[str, ServerHistory] = {}  # the forecast's input; see controller/history.py
        self.history_store: HistoryStore = (
            history_store if history_store is not None else MemoryHistoryStore()
        )
        self._forecast_policy = settings.forecast_policy()
        self._history_read = False  # read once per leadership: the previous leader may have written it
        self._history_fault: str | None = None

    def _new_id(self, now_s: float) -> str:
        self._seq += 1
        return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now_s))}-{self._seq}"

    async def _stage(
        self, stage: Stage, timeout_s: float, call: Awaitable[T], stage_ms: dict[str, float]
    ) -> T:
        start = self._timer()
        try:
            async with asyncio.timeout(timeout_s):
                return await call
        except TimeoutError:
            failure = StageFailure(stage=stage, kind="transient", message=f"timed out after {timeout_s:g}s")
        except UpstreamError as exc:
            failure = StageFailure(stage=stage, kind=exc.kind.value, message=str(exc))
        except ValidationError as exc:
            failure = StageFailure(
                stage=stage,
                kind="permanent",
                message=f"bad answer: {exc.error_count()} "
                f"problem(s), first: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
            )
        except Exception as exc:  # the loop never dies: anything else lands in the report
            kind = classify_exception(exc)
            failure = StageFailure(stage=stage, kind=kind.value, message=f"{type(exc).__name__}: {exc}")
        finally:
            stage_ms[stage] = round((self._timer() - start) * 1000, 3)
        raise _StageFailedError(failure)

    async def run_cycle(self, now_s: float) -> CycleReport:
        cycle_id = self._new_id(now_s)
        with structlog.contextvars.bound_contextvars(cycle_id=cycle_id):
            start = self._timer()
            fields: dict[str, Any] = {
                "cycle_id": cycle_id,
                "started_at_s": now_s,
                "dry_run": self.settings.dry_run,
            }
            stage_ms: dict[str, float] = {}
            if not self.is_leader():
                self._history_read = False
                report = CycleReport(
                    **fields, outcome="standby", notes=["not the leader: nothing collected or changed"]
                )
                log.info("cycle_standby")
                return report
            try:
                await self._run(fields, stage_ms)
            except _StageFailedError as failed:
                fields["errors"] = [failed.failure]
                fields["outcome"] = "failed"
                notes = fields.setdefault("notes", [])
                notes.append(
                    f"{failed.failure.stage} failed: later stages skipped, nothing changed by this cycle"
                    if failed.failure.stage != "update"
                    else "update failed: the actuator's state is re-read and re-planned next cycle"
                )
            report = CycleReport(**fields, stage_ms=stage_ms, duration_s=round(self._timer() - start, 6))
            log.info(
                "cycle_done",
                outcome=report.outcome,
                duration_s=report.duration_s,
                stage_ms=stage_ms,
                errors=[e.model_dump() for e in report.errors],
                actions={a.server: a.outcome.value for a in report.actions},
            )
            return report

    async def _run(self, fields: dict[str, Any], stage_ms: dict[str, float]) -> None:
        s = self.settings
        collect = await self._stage("collect", s.collect_timeout_s, self.stages.collect(), stage_ms)
        fields["collected"] = CollectedSummary.of(collect)
        if collect.degraded:
            fields["outcome"] = "degraded"
        if not collect.servers:
            fields["notes"] = ["no managed servers collected: nothing to optimize"]
            return
        now_s = fields["started_at_s"]
        notes = fields.setdefault("notes", [])
        system = collect.system
        if s.calibration != "off":
            system = await self._calibrate(collect, now_s, fields)
        ahead = await self._look_ahead(collect, system, now_s, notes)
        opened = window.open_cycle(self.window, collect.servers, self._window_policy, now_s)
        floors = window.floors(opened, collect.servers)
        for name, held in ahead.holds.items():  # no forecast: no scale-down because of it
            floors[name] = max(floors.get(name, 0), held)
        system = with_floors(ahead.system, floors)
        solution = await self._stage("optimize", s.optimize_timeout_s, self.stages.optimize(system), stage_ms)
        fields.update(
            solver=f"{solution.solver.name}:{solution.solver.status}",
            total_cost=solution.total_cost,
            cost_by_type=dict(solution.cost_by_type),
            decisions=DecisionSummary.all_of(
                solution, floors, {m.server: m.hold for m in collect.servers if m.hold is not None}
            ),
        )
        if fields.get("calibration"):
            fields["decisions"] = _with_calibration(fields["decisions"], fields["calibration"], collect)
        # what the rollout budget deferred: the totals, in the answer of /invoke
        rollout = [s.text for s in solution.solver.steps if s.code is StepCode.ROLLOUT_BUDGET]
        notes.extend(rollout)
        if rollout:
            fields["rollout_budget"] = rollout[0]
        request = UpdateRequest(
            cycle_id=fields["cycle_id"],
            solution=solution,
            servers=collect.servers,
            placement=collect.placement,
            dry_run=s.dry_run,
        )
        response = await self._stage("update", s.update_timeout_s, self.stages.update(request), stage_ms)
        self.window = window.record(opened, response.actions, now_s)
        fields["actions"] = response.actions
        fields["dry_run"] = response.dry_run
        if any(a.outcome in BAD_OUTCOMES for a in response.actions):
            fields["outcome"] = "degraded"

    async def _calibrate(self, collect: CollectResult, now_s: float, fields: dict[str, Any]) -> SystemData:
        """Learn from this collect (:mod:`controller.calibrate`); the system to optimize. A failure
        to persist is a note: the learned values stay in memory and are written next cycle."""
        outcome = calibrate.calibrate(self.calibration, collect, self.settings, now_s)
        self.calibration = outcome.book
        fields["calibration"] = outcome.summaries
        if self.calibration_store is not None and outcome.data != self._saved:
            try:
                await self.calibration_store.save(outcome.data)
                self._saved = outcome.data
            except Exception as exc:  # the loop never dies: the next cycle writes again
                fields.setdefault("notes", []).append(
                    f"calibration not persisted ({type(exc).__name__}: {exc}); kept in memory"
                )
        return outcome.system

    async def _look_ahead(
        self, collect: CollectResult, system: SystemData, now_s: float, notes: list[str]
    ) -> lookahead.Lookahead:
        """Read the stored history (first cycle of a leadership), enter this cycle's rates of the
        servers whose class asks for a forecast, save it, and forecast for them. A store that fails
        or holds garbage leaves an empty history and the reason (:mod:`controller.lookahead` then
        sizes reactively and holds)."""
        policy, timeout_s = self._forecast_policy, self.settings.collect_timeout_s
        if not self._history_read:
            self._history_read = True
            try:
                async with asyncio.timeout(timeout_s):
                    text = await self.history_store.load()
                self.history = history.decode(text, policy) if text is not None else {}
                self._history_fault = None if text is not None else NO_HISTORY
            except history.HistoryError as exc:
                self.history, self._history_fault = {}, f"stored load history unreadable: {exc}"
            except Exception as exc:  # the store's failure must not stop the cycle
                self.history, self._history_fault = (
                    {},
                    f"load history store failed: {type(exc).__name__}: {exc}",
                )
            if self._history_fault not in (None, NO_HISTORY):
                notes.append(f"forecast: {self._history_fault}; starting an empty history")
                log.warning("history_not_read", reason=self._history_fault)
        others = lookahead.not_asking(system)
        rates = {
            m.server: m.arrival_rpm
            for m in collect.servers
            if m.trusted and m.arrival_rpm is not None and m.server not in others
        }
        kept = history.prune(self.history, others, now_s, policy)
        self.history = history.record(kept, rates, now_s, policy)
        try:
            async with asyncio.timeout(timeout_s):
                await self.history_store.save(history.encode(self.history, policy))
        except Exception as exc:  # a later leader reads an older history: said, not fatal
            notes.append(f"forecast: load history not saved: {type(exc).__name__}: {exc}")
        ahead = lookahead.plan(
            system,
            self.history,
            now_s,
            period_s=self.settings.control_period_s,
            policy=policy,
            default_startup_s=self.settings.forecast_default_startup_s,
            fault=self._history_fault,
        )
        notes.extend(ahead.notes)
        return ahead


def _with_calibration(
    decisions: list[DecisionSummary], summaries: list[CalibrationSummary], collect: CollectResult
) -> list[DecisionSummary]:
    """Each decision sized with learned performance data says so (a step of its own, last)."""
    reasons = calibrate.sizing_reasons(summaries, collect, {d.server: d.accelerator for d in decisions})
    return [
        d.model_copy(
            update={"reasons": [*d.reasons, reasons[d.server]], "codes": [*d.codes, StepCode.CALIBRATED]}
        )
        if d.server in reasons
        else d
        for d in decisions
    ]


def with_floors(system: SystemData, floors: Mapping[str, int]) -> SystemData:
    """``system`` with each server's ``floorReplicas`` set from ``floors`` (by server name); the
    rest of the system is shared, not copied."""
    servers = [
        spec.model_copy(update={"floor_replicas": floors[spec.name]}) if spec.name in floors else spec
        for spec in system.servers.servers
    ]
    return system.model_copy(update={"servers": system.servers.model_copy(update={"servers": servers})})


def _parsed(model: type[M], text: str, data: Callable[[], Any]) -> M:
    """``model`` from an answer's text, by pydantic's JSON parser straight into the model (at 1,000
    servers half the CPU of ``json.loads`` and ``model_validate``). An answer it rejects takes the
    general path, ``model_validate(data())``, so what is not JSON, is wrapped or does not match fails
    or passes exactly as it does under ``model_validate`` alone."""
    try:
        return model.model_validate_json(text)
    except ValidationError:
        return model.model_validate(data())


def failure_kind(report: CycleReport) -> ErrorKind | None:
    """The kind of the report's stage failure, if any."""
    return ErrorKind(report.errors[0].kind) if report.errors else None


class HttpStages:
    def __init__(self, settings: ControllerSettings, token: str | None = None) -> None:
        self.settings = settings
        self._collector = JsonClient(settings.url("collector"))
        self._optimizer = JsonClient(settings.url("optimizer"))
        self._actuator = JsonClient(settings.url("actuator"), token=token)

    async def collect(self) -> CollectResult:
        # calibration off: the collector leaves out the queries only calibration reads
        path = f"/collect?{CALIBRATION_PARAM}=off" if self.settings.calibration == "off" else "/collect"
        status, text = await self._collector.exchange("GET", path, self.settings.collect_timeout_s)
        return _parsed(CollectResult, text, lambda: self._collector.decode("GET", path, status, text))

    async def optimize(self, system: SystemData) -> Solution:
        path = "/optimize"
        status, text = await self._optimizer.exchange(
            "POST", path, self.settings.optimize_timeout_s, encoded=system.model_dump_json(by_alias=True)
        )

        def data() -> Any:
            data = self._optimizer.decode("POST", path, status, text)
            if isinstance(data, dict) and "solution" in data and "decisions" not in data:
                data = data["solution"]
            return data

        return _parsed(Solution, text, data)

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        # Wall clock, shared by the pod's containers: an actuator that reads the request after
        # this call has timed out (it was hung) must not act on it.
        deadline_s = time.time() + self.settings.update_timeout_s
        body = request.model_copy(update={"deadline_s": deadline_s}).model_dump_json(by_alias=True)
        path = "/update"
        status, text = await self._actuator.exchange(
            "POST", path, self.settings.update_timeout_s, encoded=body
        )
        return _parsed(UpdateResponse, text, lambda: self._actuator.decode("POST", path, status, text))

    async def close(self) -> None:
        for client in (self._collector, self._optimizer, self._actuator):
            await client.close()
