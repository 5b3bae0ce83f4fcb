"""The hand-written analysis appended to ``benchmarks/results/accuracy.md`` by
:mod:`benchmarks.accuracy_report`: where the model departs from the emulator and why. The numbers
quoted come from the committed results (``accuracy_after.json``, ``accuracy_before.json``) and
from the runs named in the text (benchmark of commit bdf083f's grid for "before" figures of
findings 4-5, the same observations re-predicted for the others)."""

FINDINGS = """
## Where and why the model departs

**1. Prefills stall the whole batch (fixed in `optimizer/model`).** The v0.6 data runs on a
prefill-first engine, which is how vLLM's V0 scheduler works without chunked prefill (a step is
either all prefills or all decodes; running requests wait during a prefill step), and how the
emulator (`load_emulator/replica_steps.py`, written independently of the model) runs it. The
inferno reading used before, `S(n) = f(n) + (out-1) d(n)` with `mu_N = N / S(N)`, treats a
prefill as private to its request, so the batch seemed to share it. In fact each prefill costs
every running request `f`:

- saturation was over-stated: the true rate is `mu_N = 1 / (f(N) + (out-1) d(N) / N)` (prefills
  serial, decodes shared). On the grid the old `mu_N` was 0-30 % (median 5.6 %; +29.6 % for
  llama_7b/H100 N = 64) above the emulator's measured saturation (+11 % for granite_13b/A100 N =
  16, +19 % at N = 32), so at a given real load the old model saw a lower one and
  under-predicted TTFT, more and more towards saturation (median -15 % at 60-80 % load, -57 % at
  90-95 %, down to -96 %);
- ITL was under-predicted by the prefill steps interleaved between a request's tokens (median -4
  % at 60-80 % load, down to -22 %; down to -41 % at 90-95 %).

The model now stretches the decode part of `S(n)` by `1/(1 - lambda f)` while the batch has room
(every arrival is prefilled at once), leaves it unstretched in the state "batch full, nobody
waiting" (nothing to prefill), uses the serial `mu_N` above it (a prefill follows each
completion when requests queue), and gives `ITL = (S - f(n_eff)) / (out - 1)`. Unit tests:
`tests/unit/optimizer/test_prefill_stalls.py` (saturation formula, chain against a brute-force
chain, ITL, TTFT residual); smoke test against the emulator: `tests/sim/test_accuracy_smoke.py`
(fails on the old model: saturation +11 / +19 %, ITL -8.6 %).

**2. The rest of the iteration in progress (fixed).** An arrival that finds a free slot still
waits for the running step to end before its prefill starts: on average `((busy - phi) d + phi f)
/ 2`, with busy = 1 - p0 and phi = X f the share of time in prefills. Without it the mean TTFT was
3-8 % low at light load for v0.6 data and 26-33 % low for decode-only (v0.1) data, whose TTFT is
a single decode step (`TTFT = W + ITL (1 + busy / 2)` now).

**3. The "1955 ms predicted vs 210 ms observed" symptom was mean against median.** At moderate
load most requests find a free slot (TTFT = prefill, a few hundred ms: the median), while a few
find the batch full and wait for a completion, tens of seconds with 1024 output tokens: the
mean. Example: granite_34b/L4, N = 1, 50 % load: observed mean 339 s (+-11 %), median 12 s; the
model says 345 s for the mean. Compared statistic for statistic, the model's mean follows the
emulator's mean (the raw CSV also has the p50s: `pred_ttft_p50_ms`, `obs_ttft_p50_ms`).

**4. The 60 % and 80 % columns of the previous grid were the method, not the model (benchmark
fixed).** Every point ran the same seeds (1 and 2), and a Poisson stream at rate r is a unit-rate
stream scaled by 1/r, so every row at one load saw the *same* arrivals and token counts in units
of its own service time: one lucky or unlucky stream moved a whole column alike. At 60 % the two
streams carried 1.2 % and 3.5 % less work than nominal (arrivals x output tokens), and the column
read +9.9 +- 2.9 % on average over its 23 rows; at 80 % seed 1 holds a burst (granite_13b/A100 N =
32: 1,028 ms from it against 642 ms over ten runs, seeds 1, 2 and eight others), which read
-16..-35 % for the batches of 25-38. One run's mean TTFT scatters by +-15-25 % at 60-80 % load
(granite_13b/A100 N = 8 at 60 %: 900-1,468 ms over 8 runs), so two runs cannot resolve 10 %. The
grid now gives every point (and every row's saturation run) seeds of its own (`point_seeds`, a
hash of the point's name), runs 8 independent seeds of 500 / (1 - min(load, 0.8))^2 arrivals each
after a 10 % warm-up, and reports the 95 % interval of each observed mean. For 1.3x the CPU (396
s) the per-load averages over the 23 rows are now within +-2 % at every load from 10 to 80 %
(table above; 60 %: +0.4 +- 3.0 %), i.e. no load level is biased; the earlier reading that shorter
runs read low is not needed to explain the data (80 %: -0.5 +- 2.6 % now). The per-point count
within 10 % stays noise-limited: every point outside 10 % below 90 % load has an interval that
reaches back inside (none is shown to be off); `--seeds 32` halves the intervals for 4x the CPU.
Prediction at the realised arrival rate instead of the nominal one is in the CSV
(`pred_ttft_at_obs_rate_ms`): it does not reduce the scatter, which comes from the burstiness of
the stream, not its count.

**5. The finite queue room under-stated TTFT for tiny batches near saturation (fixed in
`optimizer/model/queue.py`).** Verified: with `max_queue_factor * N` = 10 places for N = 1 the
chain blocked 1.9 % of arrivals at 80 % load and 4.4 % at 90 %, which vLLM and the emulator queue,
and cut the wait short: -25 / -61 / -77 % at 80 / 90 / 95 % load for llama_70b/A100 N = 1 on this
grid, -28 / -49 / -80 % for granite_34b/L4 N = 1, -28 / -65 % at 90 / 95 % for N = 2. For sizing
this is the dangerous direction: under a mean TTFT target of 200 s (v0.6 granite_13b/A100-like
data, N = 1) the old chain sized a replica at 99.9 % of saturation, "limited by saturation",
where an unbounded queue allows 90.2 %: 11 % more load per replica than the server can carry at
that TTFT. Below saturation the chain now uses the room `max(Q, ceil(ln 1e-9 / ln r))` (r =
lambda / mu_N), which leaves under 1e-9 of the geometric tail beyond it: the unbounded queue to
1e-9, at the same O(1) cost, for means, percentiles and sizing alike. At or above saturation an
unbounded queue has no steady state and the configured room still stands in (predictions of
overloaded servers only; sizing stops at 99.9 % of mu_N). Now: -10..+18 % at 80-95 % for those
rows, against intervals of +-6-28 %. Unit tests: `tests/unit/optimizer/test_open_queue.py`
(M/M/1 mean and p95 with the room 10; sizing independent of the room); smoke test against the
emulator: N = 1 at 90 % (old model: about -55 %). The samples/large plan does not change (cost
29,979.5 with and without the fix): its batches are not that small near saturation.

**6. The v0.7 (iteration) schema counted one decode step too many in TTFT (fixed in
`optimizer/model/service_time.py`), and its mean context is not length-biased (not fixed).**
Inferno's v0.7 reading is `TTFT = W + P + D`: a prefill step, then a decode step for the first
token. In vLLM (and in the emulator) the step that runs the prompt, mixed with the others'
decodes under chunked prefill, samples the first token, as the v0.6 reading already has it; the
model now says `TTFT = W + P(Ls) + residual` (the rest of the step in progress). At 10 % load:
+49 % before, -1 % now; with deterministic output lengths (which isolate it) +48 % -> +2 % at 10 %
and +36 % -> +3 % at 30 %. `S(n)`, ITL and saturation are unchanged (inferno's formula). What
remains is a separate error: the attended context of a running request is taken as `in + out/2`,
exact for equal output lengths; with spread-out lengths the requests in a batch at any moment are
mostly long ones, so the mean context is `in + E[L^2] / (2 E[L])`, about `in + out` for geometric
lengths (the emulator's default, and the spread the chain's exponential service times already
assume). Evidence: with deterministic lengths the model's ITL is +4 % and its saturation within
3 % of the emulator's (0.442 against 0.454 req/s); with geometric ones the emulator saturates at
0.346 req/s (model 0.442, +28 %) and the ITL error goes -1 / -8 / -14 / -21 % at 10 / 30 / 50 /
70 % load. Re-predicting with the context `in + out (1 + cv^2) / 2`, cv = 1, gives ITL +4..+7 %
and saturation -3 %. It is left as it is because the right value depends on the spread of output
lengths, which the data files do not carry: a setting (say `output_length_cv`, 0 for inferno's
reading) is the natural fix. Until then the v0.7 model is optimistic for workloads with
spread-out output lengths (ITL up to 21 % low, saturation 28 % high); its mid-load TTFT, which the
extra step had over-stated, is now -7 / -16 % at 30 / 50 % load for the same reason.

**7. Left.** ITL: every point below 90 % load within 5 % (largest +4.7 %, llama_7b/H100 N = 64 at
60 %, a small over-prediction growing with N whose cause is not established). TTFT: no point below
90 % load is shown to be more than 10 % off; the 20 outside 10 % are noise-limited (intervals
+-15-55 %). At 90-95 % the errors are within their (wide) intervals except granite_34b/MI300X N =
28 at 95 % (+35 +- 18 %), outside the target range. The decode-only (v0.1) spot check is within
its intervals.

No unit mix-up was found (the emulator converts the data's ms to s once, in `timing.py`; the
model works in ms) and tokens are counted alike (the prefill yields the first output token, then
`out - 1` decode steps).

**Sizing stays consistent** (finding 1): `optimizer/model/sizing.py` inverts the same `evaluate`, so the
largest rate per replica under an SLO now uses the serial-prefill saturation and the stretched ITL:
about 10 % less per replica for v0.6 data near saturation, which is what the emulated server
delivers. On samples/large (default settings, same optimizer otherwise) the plan's cost goes
from 26,300 to 29,980 (+14.0 %) with 700 instead of 849 replicas (a different accelerator mix):
the old model promised capacity the emulated servers do not have.
"""
