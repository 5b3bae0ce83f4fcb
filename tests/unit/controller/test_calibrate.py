"""Online calibration in the cycle (controller/calibrate.py): evidence from the collect, the
report, observe vs apply, the read-back from the dynamic ConfigMap, pin and reset, persistence."""

from __future__ import annotations

from typing import Any

import pytest

from calibration import scaled
from calibration.fit import Window, parts_ms
from contract.calibration import CalibrationData, LearnedEntry, MeasuredWindow
from contract.collect import CollectResult
from contract.data.perf import PerfParams, PrefillDecodePerf
from contract.steps import StepCode
from controller import calibrate
from controller.cycle import CycleRunner
from tests.unit.actuator.fakes import server
from tests.unit.controller.fakes import FakeStages, collect_result, controller_settings, system_data

PRIOR = PrefillDecodePerf(20.13, 0.87, 161.04, 0.0271875)  # samples/small llama_13b on A100
TRUTH = scaled(PRIOR, 2.0, 0.5)


def measured(truth: PerfParams, running: float, at_s: float) -> MeasuredWindow:
    """A Deployment of 2 pods at ``running`` requests per pod on an engine running ``truth``."""
    rps, itl = 0.5, 30.0
    for _ in range(60):
        w = Window(at_s, rps, 512.0, 256.0, itl, 0.0, 1.0, running=running)
        itl = sum(parts_ms(truth, w))
        rps = running / (256.0 * itl / 1000.0)
    return MeasuredWindow(
        window_s=240.0, last_sample_s=at_s - 5, served_models=["meta/llama-13b"], reporting_pods=2,
        completion_rps=2 * rps, in_tokens=512.0, out_tokens=256.0, itl_ms=itl, ttft_ms=3 * itl,
        running_per_pod=running,
    )  # fmt: skip


def collect_at(k: int, running: float, **overrides: Any) -> CollectResult:
    at_s = 1000.0 + 60.0 * k
    srv = server(current_accelerator="A100", ready_replicas=2, measured=measured(TRUTH, running, at_s))
    return collect_result(collected_at_s=at_s, system=system_data(), servers=[srv], **overrides)


LOADS = [2.0, 20.0, 8.0, 30.0, 12.0]


def run_cycles(mode: str, cycles: int, book: calibrate.Book = calibrate.EMPTY) -> calibrate.Outcome:
    settings = controller_settings(calibration=mode)
    outcome = None
    for k in range(cycles):
        outcome = calibrate.calibrate(book, collect_at(k, LOADS[k % len(LOADS)]), settings, 1000.0 + 60 * k)
        book = outcome.book
    assert outcome is not None
    return outcome


def _perf(outcome: calibrate.Outcome) -> PerfParams:
    return next(e.perf for e in outcome.system.models.models if (e.name, e.acc) == ("llama_13b", "A100"))


def test_apply_learns_the_split_and_sizes_with_it() -> None:
    outcome = run_cycles("apply", 12)
    [summary] = outcome.summaries
    assert (summary.model, summary.acc, summary.identified, summary.applied) == (
        "llama_13b",
        "A100",
        "split",
        True,
    )
    assert summary.fixed_factor == pytest.approx(2.0, rel=1e-3)
    assert summary.work_factor == pytest.approx(0.5, rel=1e-3)
    assert summary.prior["alpha_ms"] == pytest.approx(20.13)
    assert summary.learned["alpha_ms"] == pytest.approx(40.26, rel=1e-3)
    assert "applied to this cycle's sizing" in summary.effect
    learned = _perf(outcome)
    assert isinstance(learned, PrefillDecodePerf)
    assert learned.gamma_ms == pytest.approx(322.08, rel=1e-3)
    assert learned.delta_ms == pytest.approx(0.0135938, rel=1e-3)


def test_observe_reports_but_sizes_with_the_static_data() -> None:
    outcome = run_cycles("observe", 12)
    [summary] = outcome.summaries
    assert summary.identified == "split" and not summary.applied
    assert "not applied (calibration=observe)" in summary.effect
    assert _perf(outcome) == PRIOR


def test_learned_values_are_read_back_after_a_restart() -> None:
    first = run_cycles("apply", 12)
    persisted = CalibrationData.model_validate_json(first.data.model_dump_json())
    restarted = calibrate.calibrate(
        calibrate.EMPTY,
        collect_at(20, 10.0, calibration=persisted),
        controller_settings(calibration="apply"),
        2200.0,
    )
    [summary] = restarted.summaries
    assert summary.fixed_factor == pytest.approx(2.0, rel=1e-3)
    assert summary.evidence_windows == 13  # 12 read back + this cycle's
    before, after = _perf(first), _perf(restarted)
    assert isinstance(before, PrefillDecodePerf) and isinstance(after, PrefillDecodePerf)
    assert after.alpha_ms == pytest.approx(before.alpha_ms, rel=1e-3)
    assert after.delta_ms == pytest.approx(before.delta_ms, rel=1e-3)


def test_an_operator_pin_holds_the_values_and_a_reset_goes_back_to_the_prior() -> None:
    first = run_cycles("apply", 12)
    settings = controller_settings(calibration="apply")
    pinned = CalibrationData(
        entries=[
            LearnedEntry(
                model="llama_13b",
                acc="A100",
                fixed_factor=1.1,
                work_factor=1.1,
                identified="scale",
                confidence=1.0,
                pinned=True,
            )
        ]
    )
    out = calibrate.calibrate(first.book, collect_at(13, 10.0, calibration=pinned), settings, 1780.0)
    [summary] = out.summaries
    assert (summary.fixed_factor, summary.work_factor, summary.applied) == (1.1, 1.1, True)
    assert summary.reasons == ["pinned by the operator: nothing learned"]
    reset = CalibrationData(entries=[first.data.entries[0].model_copy(update={"reset": True})])
    out = calibrate.calibrate(out.book, collect_at(14, 10.0, calibration=reset), settings, 1840.0)
    [summary] = out.summaries
    assert (summary.fixed_factor, summary.work_factor, summary.evidence_windows) == (1.0, 1.0, 1)
    assert summary.reasons[0].startswith("reset by the operator")
    assert not out.data.entries[0].reset
    # the same (unchanged) ConfigMap entry next cycle does not reset again
    out = calibrate.calibrate(out.book, collect_at(15, 20.0, calibration=reset), settings, 1900.0)
    assert out.summaries[0].evidence_windows == 2


def test_an_observation_carries_its_servers_measured_output_length_spread() -> None:
    c = collect_at(0, 10.0)
    [geometric] = calibrate.observations(c)[("llama_13b", "A100")]
    assert geometric.out_cv2 == 1.0  # unmeasured: the model's default
    measured_spread = system_data("llama").model_dump(by_alias=True)
    measured_spread["servers"]["servers"][0]["currentAlloc"]["load"]["outTokensCv2"] = 0.25
    c = c.model_copy(update={"system": type(c.system).model_validate(measured_spread)})
    [obs] = calibrate.observations(c)[("llama_13b", "A100")]
    assert obs.out_cv2 == 0.25


def test_the_kv_cache_context_goes_from_the_measured_window_to_the_stored_evidence() -> None:
    at_s = 1000.0
    window = measured(TRUTH, 10.0, at_s).model_copy(update={"context_tokens_per_pod": 8_000.0})
    srv = server(current_accelerator="A100", ready_replicas=2, measured=window)
    c = collect_result(collected_at_s=at_s, system=system_data(), servers=[srv])
    [obs] = calibrate.observations(c)[("llama_13b", "A100")]
    assert obs.context_tokens_per_pod == 8_000.0
    settings = controller_settings(calibration="apply")
    out = calibrate.calibrate(calibrate.EMPTY, c, settings, at_s)
    stored = CalibrationData.model_validate_json(out.data.model_dump_json())
    assert '"contextTokens":8000.0' in out.data.model_dump_json()
    [evidence] = calibrate.state_of(stored.entries[0]).evidence
    assert evidence.context_tokens == 8_000.0


def test_untrusted_servers_and_servers_without_a_known_accelerator_give_no_evidence() -> None:
    c = collect_at(0, 10.0)
    srv = c.servers[0]
    for bad in (
        srv.model_copy(update={"trusted": False}),
        srv.model_copy(update={"current_accelerator": ""}),
    ):
        assert calibrate.observations(c.model_copy(update={"servers": [bad]})) == {}
    [obs] = calibrate.observations(c)[("llama_13b", "A100")]
    assert (obs.source, obs.ready_pods, obs.end_s) == ("team-a/llama", 2, 1000.0)


class Store:
    def __init__(self, fail: bool = False) -> None:
        self.saved: list[CalibrationData] = []
        self.fail = fail

    async def save(self, data: CalibrationData) -> None:
        if self.fail:
            raise OSError("configmap patch refused")
        self.saved.append(data)


async def test_the_cycle_reports_calibration_and_persists_it() -> None:
    stages = FakeStages(collect=collect_at(0, 10.0))
    store = Store()
    runner = CycleRunner(stages, controller_settings(calibration="observe"), calibration_store=store)
    report = await runner.run_cycle(1000.0)
    assert [c.model for c in report.calibration] == ["llama_13b"]
    assert report.calibration[0].accepted == 1
    assert len(store.saved) == 1 and len(store.saved[0].entries[0].evidence) == 1


async def test_a_failed_save_is_a_note_and_the_cycle_goes_on() -> None:
    stages = FakeStages(collect=collect_at(0, 10.0))
    runner = CycleRunner(
        stages, controller_settings(calibration="observe"), calibration_store=Store(fail=True)
    )
    report = await runner.run_cycle(1000.0)
    assert report.outcome == "ok"
    assert any("calibration not persisted (OSError: configmap patch refused)" in n for n in report.notes)
    assert stages.calls == ["collect", "optimize", "update"]


async def test_off_learns_nothing() -> None:
    stages = FakeStages(collect=collect_at(0, 10.0))
    report = await CycleRunner(stages, controller_settings(calibration="off")).run_cycle(1000.0)
    assert report.calibration == []


async def test_a_decision_sized_with_learned_values_says_so() -> None:
    stages = FakeStages(collect=collect_at(0, LOADS[0]))
    runner = CycleRunner(stages, controller_settings(calibration="apply"))
    for k in range(12):
        stages.collect_answer = collect_at(k, LOADS[k % len(LOADS)])
        report = await runner.run_cycle(1000.0 + 60 * k)
    [decision] = report.decisions
    assert decision.codes[-1] is StepCode.CALIBRATED
    assert decision.reasons[-1].startswith(
        "sized with calibrated performance data for llama_13b on A100: fixed part x2.000, work part x0.500"
    )
    learned = next(
        e.perf for e in stages.systems[-1].models.models if (e.name, e.acc) == ("llama_13b", "A100")
    )
    assert isinstance(learned, PrefillDecodePerf) and learned.alpha_ms == pytest.approx(40.26, rel=1e-3)
    observed = await CycleRunner(stages, controller_settings(calibration="observe")).run_cycle(2000.0)
    assert all(StepCode.CALIBRATED not in d.codes for d in observed.decisions)


def test_a_large_fleet_lists_only_the_first_windows_left_out_and_counts_the_rest() -> None:
    c = collect_at(0, 10.0)
    stale = c.servers[0].measured.model_copy(update={"last_sample_s": 0.0})  # type: ignore[union-attr]
    servers = [c.servers[0].model_copy(update={"deployment": f"d{k}", "measured": stale}) for k in range(25)]
    out = calibrate.calibrate(
        calibrate.EMPTY, c.model_copy(update={"servers": servers}), controller_settings(), 1000.0
    )
    [summary] = out.summaries
    assert len(summary.left_out) == calibrate.MAX_LEFT_OUT and {x.code for x in summary.left_out} == {"stale"}
    assert summary.reasons[-1] == "5 more window(s) left out, not listed"
    assert summary.evidence_windows == 0


def test_a_deployment_whose_series_name_another_model_gives_no_evidence() -> None:
    learned = run_cycles("apply", 12)
    c = collect_at(12, 10.0)
    for names in (["meta/llama-70b"], ["meta/llama-13b", "meta/llama-70b"]):
        other = c.servers[0].measured.model_copy(update={"served_models": names})  # type: ignore[union-attr]
        out = calibrate.calibrate(
            learned.book,
            c.model_copy(update={"servers": [c.servers[0].model_copy(update={"measured": other})]}),
            controller_settings(calibration="apply"),
            1720.0,
        )
        [summary] = out.summaries
        assert [x.code for x in summary.left_out] == ["other_model"]
        assert (summary.fixed_factor, summary.work_factor) == (
            learned.summaries[0].fixed_factor,
            learned.summaries[0].work_factor,
        )
        assert summary.evidence_windows == learned.summaries[0].evidence_windows
