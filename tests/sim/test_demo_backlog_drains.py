"""The embedded demo after a load step: once the scale-up's pods are Ready, Premium's TTFT is back.

Runs the whole loop (:func:`load_emulator.demo.run.run_demo`: the four services as processes, the
in-memory API server, the fleet engine on the wall clock; loopback only) for ``DURATION_S`` of
load on one Premium server whose rate quadruples at ``STEP_AT_S``, once its first pods are warm.
The next cycle asks for at least twice the pods, which take ``STARTUP_DELAY_S`` to become
Ready, so for that long the first pods carry four times their load and fill their seats. With
the demo's default routing (least-loaded, as a queue-aware gateway) an arrival waits in a pod only
when every pod's seats are taken, and once the new pods serve they take the arrivals while the
first pods drain what they hold; the observed p95 TTFT (last 20 s) is then within the target at
the latest two cycles after the cycle that sees all the pods Ready, and stays there. With
``--routing round-robin`` (a plain Service) the same run misses it: arrivals queue in pods whose
seats are full while others have free ones, and the first pods keep their share of the arrivals
behind their backlog. Takes about 2 minutes of wall time.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from load_emulator.demo.loop_state import DemoSettings
from load_emulator.demo.run import run_demo
from load_emulator.demo.table import Row

SERVER = "Premium-llama_13b"
STEP_AT_S = 40.0
DURATION_S = 110.0
CYCLE_S = 10.0
STARTUP_DELAY_S = 15.0
WITHIN_CYCLES = 2


def _premium_rows(tmp_path: Path) -> tuple[list[Row], str]:
    settings = DemoSettings(
        servers=(SERVER,),
        pattern="steps",
        params={"factors": "1,4", "step_s": f"{STEP_AT_S:g}"},
        duration_s=DURATION_S,
        cycle_s=CYCLE_S,
        startup_delay_s=STARTUP_DELAY_S,
        workdir=tmp_path,
    )
    assert settings.routing == "least-loaded"  # the demo's default is what this checks
    out = io.StringIO()
    result = asyncio.run(asyncio.wait_for(run_demo(settings, out), timeout=DURATION_S + 90.0))
    assert result.exit_codes == [0, 0, 0, 0], out.getvalue()[-3000:]
    return [row for rows in result.cycle_rows for row in rows if row.server == SERVER], out.getvalue()


def test_premium_ttft_is_back_within_two_cycles_of_the_scale_up_being_ready(tmp_path: Path) -> None:
    rows, text = _premium_rows(tmp_path)
    target_ms = rows[0].ttft_target_ms
    # The step's scale-up: the first cycle after the step whose table asks for more pods than are Ready.
    up = next(i for i, r in enumerate(rows) if r.load_rpm > rows[0].load_rpm and r.desired > r.ready)
    ready = next((i for i in range(up + 1, len(rows)) if rows[i].ready == rows[i].desired), None)
    assert ready is not None, f"the scale-up's pods never became Ready\n{text}"
    assert rows[up].desired >= 2 * rows[up].ready, f"the step did not overload the first pods\n{text}"
    assert ready + WITHIN_CYCLES < len(rows), f"the run ended too soon after the pods were Ready\n{text}"
    back = [r.ttft_p95_ms for r in rows[ready : ready + WITHIN_CYCLES + 1]]
    assert min(back) <= target_ms, f"p95 TTFT {back} ms after Ready, target {target_ms} ms\n{text}"
    # And it stays back while the load holds (no further scale-up in between).
    assert all(r.ttft_p95_ms <= target_ms for r in rows[ready + WITHIN_CYCLES :]), text
