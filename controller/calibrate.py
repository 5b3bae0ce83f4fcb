"""Online calibration in the cycle: the learned performance of each (model, accelerator), kept
between cycles like the scale-down window, and the optimizer's input with it applied.

Called by :class:`controller.cycle.CycleRunner` after the collect, before the optimize. Pure: the
book (what each pair has learned) and the collect result in, the next book, the report's
:class:`~contract.calibration.CalibrationSummary` list and the system to optimize out. The math is
:mod:`calibration`; this module maps the wire types onto it.

- **Evidence**: each trusted server with a measured window (``ManagedServer.measured``, the
  collector's rate window of vLLM metrics) on a known accelerator is one observation of its
  (model, accelerator).
- **Read back**: the dynamic ConfigMap's ``calibration-data.json`` (``CollectResult.calibration``)
  is read every cycle; an entry the book does not know, or one that changed since the last read
  (written by another leader, or edited by the operator: ``pinned``, ``reset``, the factors of a
  pinned entry), is taken as it is. So after a restart or a leader change the learned values
  carry on, and the operator's edit acts at the next cycle.
- **Persisted**: the book as ``calibration-data.json`` (:attr:`Outcome.data`); the cycle hands it
  to its :class:`CalibrationStore` when it changed.
- **Applied** (setting ``calibration=apply``) from ``calibration_min_confidence`` on: the model
  data's entry of the pair is replaced by the learned parameters for this cycle's sizing; with
  ``observe`` the report shows what would change and the static data sizes.

Example summary reason: ``fixed part's share varied by 0.42 over 27 windows: fixed x1.987, work
x0.511``; effect: ``step at the last load (24.1 running per replica): 46.5 -> 51.0 ms (x1.10),
applied``.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from calibration import CalibrationReport, Limits, Observation, ScreenLimits, State, update
from calibration.fit import FitLimits, Window, parts_ms
from calibration.observation import PodWindow
from contract.calibration import CalibrationData, CalibrationSummary, EvidenceWindow, LearnedEntry, LeftOut
from contract.collect import CollectResult
from contract.data.catalog import DecodeParms, ModelPerfEntry, PerfParms, PrefillParms, StepParms
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from contract.data.system import SystemData
from controller.settings import ControllerSettings

Key = tuple[str, str]
"""(model, accelerator)."""


@dataclass(frozen=True)
class Book:
    """What the controller has learned, and the persisted entries it last read (to see the
    operator's edits)."""

    states: Mapping[Key, State]
    seen: Mapping[Key, LearnedEntry]


EMPTY = Book({}, {})
MAX_LEFT_OUT = 20
"""Windows left out listed per pair in a report (a fleet of 1,000 servers of one pair could list
1,000); the rest are counted in a reason."""


def _more(left: int) -> list[str]:
    return [f"{left - MAX_LEFT_OUT} more window(s) left out, not listed"] if left > MAX_LEFT_OUT else []


@dataclass(frozen=True)
class Outcome:
    book: Book
    summaries: list[CalibrationSummary]
    system: SystemData
    data: CalibrationData
    """The book as ``calibration-data.json``, to persist."""


def limits_of(settings: ControllerSettings) -> Limits:
    return Limits(
        screen=ScreenLimits(min_requests=settings.calibration_min_requests),
        fit=FitLimits(),
        max_step_ratio=settings.calibration_max_step_ratio,
        max_total_ratio=settings.calibration_max_total_ratio,
    )


def calibrate(book: Book, collect: CollectResult, settings: ControllerSettings, now_s: float) -> Outcome:
    """One cycle of calibration (see the module)."""
    priors = {(e.name, e.acc): e for e in collect.system.models.models}
    states = _read_back(book, collect.calibration)
    evidence = observations(collect)
    limits = limits_of(settings)
    summaries: list[CalibrationSummary] = []
    applied: dict[Key, PerfParams] = {}
    for key in sorted(set(states) | set(evidence)):
        entry = priors.get(key)
        if entry is None:
            continue  # no static data for the pair: nothing to calibrate
        prior = entry.perf
        state, report = update(states.get(key, State(*key)), prior, evidence.get(key, []), now_s, limits)
        states[key] = state
        use = (
            settings.calibration == "apply"
            and state.identified != "none"
            and (state.pinned or state.confidence >= settings.calibration_min_confidence)
        )
        if use:
            applied[key] = report.learned
        summaries.append(_summary(state, report, use, settings))
    seen = {(e.model, e.acc): e for e in collect.calibration.entries} if collect.calibration else {}
    data = to_data(states)
    return Outcome(Book(states, {**book.seen, **seen}), summaries, with_perf(collect.system, applied), data)


def sizing_reasons(
    summaries: list[CalibrationSummary], collect: CollectResult, accelerators: Mapping[str, str]
) -> dict[str, str]:
    """Server -> the reason its decision carries when it was sized with learned values: the pair,
    its factors and confidence (``accelerators``: the accelerator each decision chose)."""
    applied = {(c.model, c.acc): c for c in summaries if c.applied}
    out: dict[str, str] = {}
    for server in collect.servers:
        c = applied.get((server.model, accelerators.get(server.server, "")))
        if c is not None:
            out[server.server] = (
                f"sized with calibrated performance data for {c.model} on {c.acc}: fixed part x"
                f"{c.fixed_factor:.3f}, work part x{c.work_factor:.3f} of the static data "
                f"({c.identified}, confidence {c.confidence:.2f}, {c.evidence_windows} windows)"
            )
    return out


def _read_back(book: Book, persisted: CalibrationData | None) -> dict[Key, State]:
    """The book, with every persisted entry that changed since the last read taken as it is
    (after a restart the book is empty; another leader or the operator wrote it)."""
    states = dict(book.states)
    for entry in persisted.entries if persisted else []:
        key = (entry.model, entry.acc)
        if key not in states or book.seen.get(key) != entry:
            states[key] = state_of(entry)
    return states


def observations(collect: CollectResult) -> dict[Key, list[Observation]]:
    """One observation per trusted server with a measured window, by (model, accelerator).

    Its output lengths' spread is the server's load's (``outTokensCv2``, from vLLM's
    ``request_generation_tokens`` buckets over the collector's token window), 1 when unmeasured:
    the step's context grows with ``(1 + cv^2) * out / 2`` per running request, so fixed output
    lengths (cv^2 0) read as geometric ones put 768 context tokens a request where there are 640
    (at 512/256) and learn a work factor 15 % low.
    """
    spreads = {spec.name: spec.load.out_tokens_cv2 for spec in collect.system.servers.servers}
    out: dict[Key, list[Observation]] = {}
    for server in collect.servers:
        m = server.measured
        if m is None or not server.current_accelerator or not server.trusted:
            continue
        key = (server.model, server.current_accelerator)
        out.setdefault(key, []).append(
            Observation(
                source=f"{server.namespace}/{server.deployment}",
                model=server.model,
                accelerator=server.current_accelerator,
                served_models=tuple(sorted(set(m.served_models))),
                end_s=collect.collected_at_s,
                window_s=m.window_s,
                last_sample_s=m.last_sample_s,
                reporting_pods=m.reporting_pods,
                window_pods=m.window_pods,
                ready_pods=server.ready_replicas,
                completion_rps=m.completion_rps,
                in_tokens=m.in_tokens,
                out_tokens=m.out_tokens,
                itl_ms=m.itl_ms,
                ttft_ms=m.ttft_ms,
                preemptions=m.preemptions,
                counter_resets=m.counter_resets,
                running_per_pod=m.running_per_pod,
                running_var_per_pod=m.running_var_per_pod,
                context_tokens_per_pod=m.context_tokens_per_pod,
                pods=tuple(PodWindow(**p.model_dump()) for p in m.pods),
                out_cv2=_or_geometric(spreads.get(server.server)),
            )
        )
    return out


def _or_geometric(cv2: float | None) -> float:
    return 1.0 if cv2 is None else cv2


def _summary(
    state: State, report: CalibrationReport, use: bool, settings: ControllerSettings
) -> CalibrationSummary:
    prior, new = report.prior, report.learned
    return CalibrationSummary(
        model=state.model,
        acc=state.accelerator,
        prior=_params(prior),
        learned=_params(new),
        fixed_factor=round(state.fixed_factor, 4),
        work_factor=round(state.work_factor, 4),
        identified=state.identified,
        confidence=state.confidence,
        applied=use,
        evidence_windows=len(state.evidence),
        accepted=report.accepted,
        left_out=[
            LeftOut(source=x.source, code=x.code.value, text=x.text) for x in report.left_out[:MAX_LEFT_OUT]
        ],
        reasons=[*report.reasons, *_more(len(report.left_out))],
        effect=_effect(state, prior, new, use, settings),
    )


def _effect(state: State, prior: PerfParams, new: PerfParams, use: bool, settings: ControllerSettings) -> str:
    if state.identified == "none" or not state.evidence:
        return "nothing learned yet: sized with the static data"
    last = state.evidence[-1]
    before, after = sum(parts_ms(prior, last)), sum(parts_ms(new, last))
    ratio = after / before if before > 0 else 1.0
    how = (
        "applied to this cycle's sizing"
        if use
        else "not applied (calibration=observe)"
        if settings.calibration == "observe"
        else f"not applied (confidence {state.confidence:.2f} < {settings.calibration_min_confidence:g})"
    )
    return (
        f"a step at the last measured load ({_running(last):.1f} running per replica): {before:.1f} -> "
        f"{after:.1f} ms (x{ratio:.2f}), about x{1 / ratio:.2f} the requests a replica carries at the "
        f"same latency; {how}"
    )


def _running(w: Window) -> float:
    return w.running if w.running > 0 else w.replica_rps * w.out_tokens * w.itl_ms / 1000.0


def _params(perf: PerfParams) -> dict[str, float]:
    return {k: round(v, 6) for k, v in asdict(perf).items() if isinstance(v, float)}


def state_of(entry: LearnedEntry) -> State:
    return State(
        model=entry.model,
        accelerator=entry.acc,
        fixed_factor=entry.fixed_factor,
        work_factor=entry.work_factor,
        identified=entry.identified,
        confidence=entry.confidence,
        updated_at_s=_parse_time(entry.updated_at),
        served_model=entry.served_model,
        pinned=entry.pinned,
        reset=entry.reset,
        evidence=tuple(Window(**w.model_dump(by_alias=False)) for w in entry.evidence),
    )


def to_data(states: Mapping[Key, State]) -> CalibrationData:
    return CalibrationData(
        entries=[
            LearnedEntry(
                model=s.model,
                acc=s.accelerator,
                fixed_factor=s.fixed_factor,
                work_factor=s.work_factor,
                identified=s.identified,
                confidence=s.confidence,
                updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.updated_at_s)),
                served_model=s.served_model,
                pinned=s.pinned,
                reset=s.reset,
                evidence=[EvidenceWindow(**asdict(w)) for w in s.evidence],
            )
            for _, s in sorted(states.items())
        ]
    )


def _parse_time(text: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))) if text else 0.0
    except ValueError:
        return 0.0


def with_perf(system: SystemData, perfs: Mapping[Key, PerfParams]) -> SystemData:
    """``system`` with the model data of each pair in ``perfs`` replaced by those parameters."""
    if not perfs:
        return system
    models = [
        _with(e, perfs[(e.name, e.acc)]) if (e.name, e.acc) in perfs else e for e in system.models.models
    ]
    return system.model_copy(update={"models": system.models.model_copy(update={"models": models})})


def _with(entry: ModelPerfEntry, perf: PerfParams) -> ModelPerfEntry:
    if isinstance(perf, StepPerf):
        parms = StepParms(
            fixed=perf.fixed_ms,
            per_decode=perf.per_decode_ms,
            per_prefill_token=perf.per_prefill_token_ms,
            per_context_token=perf.per_context_token_ms,
        )
        return entry.model_copy(update={"step_parms": parms})
    if isinstance(perf, IterationPerf):
        return entry.model_copy(
            update={"perf_parms": PerfParms(alpha=perf.alpha_ms, beta=perf.beta_ms, gamma=perf.gamma_ms)}
        )
    if isinstance(perf, PrefillDecodePerf):
        return entry.model_copy(
            update={
                "decode_parms": DecodeParms(alpha=perf.alpha_ms, beta=perf.beta_ms),
                "prefill_parms": PrefillParms(gamma=perf.gamma_ms, delta=perf.delta_ms),
            }
        )
    assert isinstance(perf, DecodeOnlyPerf)
    if entry.decode_parms is not None:
        return entry.model_copy(update={"decode_parms": DecodeParms(alpha=perf.alpha_ms, beta=perf.beta_ms)})
    return entry.model_copy(update={"alpha": perf.alpha_ms, "beta": perf.beta_ms})
