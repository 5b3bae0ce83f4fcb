"""The hand-written analysis appended to ``benchmarks/results/accuracy.md`` by
:mod:`benchmarks.accuracy_report`: where the model departs from the emulator and why. The numbers
quoted come from the committed results (``accuracy_after.json``, ``accuracy_before.json``) and
from the longer confirmation runs named in the text."""

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
mean. Example: granite_34b/L4, N = 1, 50 % load: observed mean 343 s, median 2.7 s; the model
says 343 s and 3.4 s. Compared statistic for statistic, the model's mean follows the emulator's
mean and its p50 the emulator's p50 (the raw CSV has both: `pred_ttft_p50_ms`,
`obs_ttft_p50_ms`).

**4. The finite queue room (a setting, not changed).** The optimizer sizes with room for
`max_queue_factor * N` (default 10 N) waiting requests and treats later arrivals as blocked;
vLLM and the emulator queue without bound. For N = 1-2 above ~70 % load the model therefore
truncates the wait and under-predicts TTFT (granite_34b/L4 and llama_70b/A100 with N = 1: -26 %
at 80 % load, -55 % at 90 %). This is `optimizer/settings.py` (not owned here); a larger
factor removes it at the cost of sizing a little more conservatively for tiny batches.

**5. A mean wait near saturation needs long runs to measure.** The wait is heavy-tailed (rare
long excursions of the queue carry most of it) and the queue's relaxation time grows like
1/(1 - load)^2, so short runs read *low*, and two seeds agreeing does not show it. The first
version of this grid (2 seeds x 3,000/(1 - load) arrivals) read granite_13b/A100 N = 16 at 70 %
load as 561 ms against 698 ms over 4 seeds x 20,000 arrivals, N = 32 at 80 % as 400 against
612 ms. Against those long runs the model is within -1.2 / +1.6 % (N = 16, 60 / 70 %) and
-2.3 / -5.1 % (N = 32, 70 / 80 %); granite_34b/MI300X N = 7 at 60 / 80 % within +2.7 / +6.6 %
(4 x 8,000/(1 - load)); decode-only N = 16 at 50 / 70 % within -6 % (4 x 40,000). The grid now
scales its runs by 1/(1 - min(load, 0.8))^2 for the same CPU; the TTFT errors left at 60-80 %
should be read with this bias in mind (the "seed spread" column under-states it).

**6. Left at 60 % load: +10-20 % on mean TTFT for batches of 5-14** (granite_13b/A100 N = 8,
granite_34b/MI300X N = 7 and 14, mistral_7b/L40S N = 9, mixtral N = 6, llama3_8b N = 6,
llama_70b N = 5), with seeds that agree; the 70 % points of the same rows are within 10 %. The
cause is not established; candidates are the mean-field stall share (one `f` at the middle
batch size, `lambda f` in every state below N) and the emulator batching several waiting
prefills into one step (sharing `gamma`), which the model does not. The negative errors at 80 %
for N >= 25 come with seed spreads of 34-48 %: noise, not model. The largest ITL error left is
+7 % (llama_7b/H100 N = 64 at 60-80 %).

**7. Not fixed: the v0.7 iteration schema with chunked prefill** (spot check above). The model's
ITL falls behind the emulator's as load grows and its light-load TTFT is too high (it counts a
whole prefill iteration plus a decode step, while the emulator folds the prefill chunk into the
running decode step). Likely causes: the model's mean attended KV per request (`in + out/2`)
ignores that with spread-out output lengths the requests in the batch at any moment are mostly
long ones (length-biased), and the chunked mixing of prefill and decode. samples/large has no v0.7
data, so this is left for a follow-up with its own grid.

No unit mix-up was found (the emulator converts the data's ms to s once, in `timing.py`; the
model works in ms) and tokens are counted alike (the prefill yields the first output token, then
`out - 1` decode steps).

**Sizing stays consistent**: `optimizer/model/sizing.py` inverts the same `evaluate`, so the
largest rate per replica under an SLO now uses the serial-prefill saturation and the stretched ITL:
about 10 % less per replica for v0.6 data near saturation, which is what the emulated server
delivers. On samples/large (default settings, same optimizer otherwise) the plan's cost goes
from 26,300 to 29,980 (+14.0 %) with 700 instead of 849 replicas (a different accelerator mix):
the old model promised capacity the emulated servers do not have.
"""
