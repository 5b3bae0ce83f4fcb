"""The busy-minute rate: the p-th percentile of a server's per-minute arrival rate.

Role: minute-level targets (``slo-ttft`` with ``slo-ttft-minute-percentile`` p, e.g. 99.5: "the
mean TTFT of at least p % of minutes is within slo-ttft"). Caller: :mod:`optimizer.candidates`,
which sizes such a server for this rate instead of its mean rate.

Why: a replica sized so that the *long-run* mean TTFT meets the target (the chain's steady state
at the mean rate) runs near its batch limit; a minute with more arrivals than average queues
behind full batches, and its mean TTFT jumps from ~0.2 s to seconds, although the mean over many
minutes holds. A target on minutes must see how busy a busy minute is.

Approximation (stated, not derived from the chain):

1. Arrivals are Poisson at the sized rate lambda (the measured rate, or the forecast's for a class
   that asks for it, :mod:`controller.forecast`, whose upper quantile already carries the rate's
   own drift); a minute's count is then ``Poisson(60 lambda)``.
2. The server's arrivals are split evenly over its replicas (round-robin, what the emulator and a
   Kubernetes Service in IPVS round-robin mode do, or a load-aware gateway, which does better).
   Under random routing each replica's count is Poisson on its own and wider than this.
3. A minute's mean TTFT is the model's steady-state mean TTFT at that minute's rate. The mean
   TTFT rises with the rate, so ``P(minute mean TTFT <= target) >= p`` when the p-quantile of the
   minute's rate is served within the target: the server is sized for that rate,
   ``lambda_p = F^-1(p; 60 lambda) / 60`` with ``F`` the Poisson CDF, and never for less than
   lambda (so a small p does not undercut the mean-target sizing). The steady state at a rate
   already contains the rate's short queue build-ups, which the steady state at the mean spreads
   over all minutes; it ignores a busy minute's backlog carried into the next one.

Worked example: a server at 60 req/min, p = 99.5: the 0.995-quantile of Poisson(60) is 81
arrivals, so it is sized for 81 req/min (1.35x); at 180 req/min, 215 (1.19x): the relative
spread of a minute's count shrinks as 1/sqrt(60 lambda).
"""

from __future__ import annotations

import math

from scipy import stats

MINUTE_S = 60.0
"""The window the percentile is over: one minute, the unit the targets are judged in."""


def minute_rate_rps(mean_rps: float, percentile: float, window_s: float = MINUTE_S) -> float:
    """The ``percentile``-th percentile (0 < p < 100) of the per-window arrival rate, req/s, for
    Poisson arrivals at ``mean_rps``; at least ``mean_rps``. E.g. 1 req/s, p 99.5: 81/60 = 1.35 req/s.

    Raises ValueError for a percentile outside (0, 100), a negative or non-finite rate, or a
    window that is not positive.
    """
    if not (math.isfinite(percentile) and 0.0 < percentile < 100.0):
        raise ValueError(f"minute percentile must be in (0, 100), got {percentile!r}")
    if not (math.isfinite(mean_rps) and mean_rps >= 0.0):
        raise ValueError(f"arrival rate must be finite and >= 0 req/s, got {mean_rps!r}")
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise ValueError(f"window must be > 0 s, got {window_s!r}")
    if mean_rps == 0.0:
        return 0.0
    count = float(stats.poisson.ppf(percentile / 100.0, mean_rps * window_s))
    return max(count / window_s, mean_rps)
