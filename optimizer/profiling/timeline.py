"""What a streaming client measured, and the features of each request's decode interval per schema.

Role: turn request timelines (when each output token reached the client) into a linear design
``y = X theta`` whose unknowns are a perf schema's parameters. Callers: :mod:`.fit` (the fit),
:mod:`.levels` (throughput and the batch seen).

Why it is linear: a request r that streams ``out`` tokens spends the time between its first and
its last token, ``y = t_last - t_first``, in exactly ``out - 1`` engine steps (each step yields one
token for every request it decodes), plus, on a prefill-first engine, the prefill iterations
run in between. Every other request q that got a token in one of those steps shows it to the
client at the same instant as r's token, so counting the tokens of all requests that arrived in
r's interval counts what those steps computed, without knowing the engine's schedule:

- decode-only (``alpha + beta*n`` per iteration): ``y = alpha*(out-1) + beta*tokens``, tokens
  counting every request's tokens in the interval (a newcomer's first one too);
- step (``fixed + per_decode*decodes + per_prefill_token*prompt + per_context_token*context``):
  ``decodes`` counts tokens after a request's first, ``prompt`` sums the prompts whose first token
  came in the interval (a prompt that fits one step is computed in the step that yields its first
  token), ``context`` sums ``in + k`` over decoded tokens (k tokens already generated: the
  positions the step attends to) and ``in`` over those prompts;
- iteration (``alpha + beta*tokens + gamma*context``): the step schema with one ``beta`` for
  decodes and prompt tokens;
- prefill-decode (vLLM V0, ``alpha + beta*n`` per decode, ``gamma + delta*prompt_sum*n_after``
  per prefill iteration that runs alone): ``y = alpha*(out-1) + beta*decodes + gamma*prefills +
  delta*sum(prompt_sum*n_after)``, a prefill iteration being the first tokens that arrive
  together and ``n_after`` the requests running just after it.

For the step and iteration schemas the steps themselves are rebuilt (:class:`_ChunkedSteps`):
tokens that arrive together form a step, and the prompt work is replayed with vLLM V1's
chunking (the budget left after the decodes goes to waiting prompts in arrival order), so a
prompt split across steps is credited to the steps that computed it; r's interval is then the
steps after the one of its first token, up to the one of its last. With exact token times (the
emulated engine at virtual time) this recovers the parameters exactly; crediting each prompt to
the step of its first token instead would count, in r's interval, prompts partly computed in r's
own prefill step (common when completions and arrivals come in bursts) and bias the context
cost by tens of percent.

For the other schemas the interval is ``(t_first + d, t_last + d]`` with ``d`` half of r's
median gap: a token that arrives with r's first token belongs to r's prefill step (left out),
one that arrives with r's last token to its last decode step (counted), and client-side jitter
below half a step does not move a token across either end. Example: three requests of 100-token
prompts decoding together, r streaming 5 tokens 30 ms apart and the two others 4 tokens each in
that interval: y = 120 ms, steps 4, decodes 12, context 12*100 + the tokens' positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Schema = Literal["decode-only", "prefill-decode", "iteration", "step"]
SCHEMAS: tuple[Schema, ...] = ("decode-only", "prefill-decode", "iteration", "step")
PARAMETERS: dict[Schema, tuple[str, ...]] = {
    "decode-only": ("alpha", "beta"),
    "prefill-decode": ("alpha", "beta", "gamma", "delta"),
    "iteration": ("alpha", "beta", "gamma"),
    "step": ("fixed", "perDecode", "perPrefillToken", "perContextToken"),
}
"""Each schema's parameters, named as in model-data.json (ms)."""
MIN_DECODE_STEPS = 2
"""A request enters the fit when its interval holds at least this many decode steps."""
_PREFILL_GROUP_SHARE = 0.25
"""First tokens closer than this share of the median gap form one prefill iteration."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RequestTimeline:
    """One request as the client saw it: when it was sent, its prompt's tokens (as the server
    counted them) and the arrival time of each output token, in seconds on one clock."""

    sent_s: float
    in_tokens: int
    token_s: tuple[float, ...]
    level: int = 0
    """The sweep level (:class:`optimizer.profiling.levels.Level`) that sent it."""
    complete: bool = True
    """Every token asked for arrived, one per event (False: it enters others' counts only)."""

    @property
    def out_tokens(self) -> int:
        return len(self.token_s)


@dataclass(frozen=True, slots=True)
class Design:
    """``y_ms ~ x @ theta`` over the fitted requests, for one schema."""

    schema: Schema
    x: FloatArray
    """rows x parameters, in the order of :data:`PARAMETERS`."""
    y_ms: FloatArray
    steps: FloatArray
    """Decode steps of each row, ``out - 1`` (the measured ITL is ``y_ms / steps``)."""
    rows: tuple[int, ...]
    """Index of each row's timeline in the input."""
    levels: tuple[int, ...]
    """The sweep level of each row's timeline."""


@dataclass(frozen=True, slots=True)
class _Pool:
    """Every token of every request, sorted by arrival time, with prefix sums of the features."""

    t_s: FloatArray
    tokens: FloatArray
    decodes: FloatArray
    prompt: FloatArray
    context: FloatArray
    groups_t_s: FloatArray
    groups: FloatArray
    groups_weight: FloatArray


def design(timelines: Sequence[RequestTimeline], schema: Schema, budget_tokens: float = 0.0) -> Design:
    """The linear design of ``schema`` over the complete timelines with enough decode steps
    (module docstring). Every timeline, complete or not, counts in the others' features.
    ``budget_tokens`` (the server's ``max_num_batched_tokens``; 0: unknown) corrects the step and
    iteration schemas for prompts split across steps (:class:`_Chunks`)."""
    pool = _pool(timelines)
    chunked = _ChunkedSteps(timelines, budget_tokens) if schema in ("step", "iteration") else None
    rows = [i for i, r in enumerate(timelines) if r.complete and r.out_tokens >= MIN_DECODE_STEPS + 1]
    x = np.zeros((len(rows), len(PARAMETERS[schema])))
    y = np.zeros(len(rows))
    steps = np.zeros(len(rows))
    for j, i in enumerate(rows):
        times = np.asarray(timelines[i].token_s)
        shift = float(np.median(np.diff(times))) / 2.0
        lo_t, hi_t = times[0] + shift, times[-1] + shift
        lo, hi = np.searchsorted(pool.t_s, [lo_t, hi_t], side="right")
        k = float(len(times) - 1)
        y[j], steps[j] = (times[-1] - times[0]) * 1000.0, k
        tokens, decodes = _span(pool.tokens, lo, hi), _span(pool.decodes, lo, hi)
        prompt, context = _span(pool.prompt, lo, hi), _span(pool.context, lo, hi)
        if chunked is not None:
            decodes, prompt, context = chunked.window(i)
            y[j] = chunked.span_ms(i)
        if schema == "decode-only":
            x[j] = (k, tokens)
        elif schema == "step":
            x[j] = (k, decodes, prompt, context)
        elif schema == "iteration":
            x[j] = (k, decodes + prompt, context)
        else:
            g_lo, g_hi = np.searchsorted(pool.groups_t_s, [lo_t, hi_t], side="right")
            x[j] = (k, decodes, float(g_hi - g_lo), _span(pool.groups_weight, g_lo, g_hi))
    return Design(schema, x, y, steps, tuple(rows), tuple(timelines[i].level for i in rows))


class _ChunkedSteps:
    """The steps of a chunked (vLLM V1) engine as the client's timelines imply them.

    Tokens that arrive together come out of one step (:func:`_step_bounds`). A step's decodes
    and their contexts are its tokens after a request's first. Its prompt work is replayed with
    V1's rule: the budget ``B`` left after the decodes goes, in arrival order, to the requests
    waiting since half a step before it began (while seats are free), each taking what its
    prompt lacks or what is left; a request whose first token comes out of the step gets the
    rest of its prompt there. Once admitted, a prompt gets a chunk every step until it is done,
    so its chunks lie in the ``ceil(P / (B - batch))`` steps before its first token at most: a
    request gets no chunk earlier (the client's send time is not when the server queued it).
    So a prompt split across steps is credited to the steps that computed it, and a chunk's
    context is the prompt computed so far including it. Without a budget (``B`` = 0) every
    prompt is computed in the step of its first token."""

    def __init__(self, timelines: Sequence[RequestTimeline], budget_tokens: float) -> None:
        positions = [i for i, r in enumerate(timelines) if r.token_s]
        self.started = [timelines[i] for i in positions]
        self.gap_s = median_gap_s(self.started)
        times, owner, index = _sorted_tokens(self.started)
        bounds = np.asarray(_step_bounds(times, owner, self.gap_s / 2.0), dtype=np.int64)
        self.ends = times[bounds[1:] - 1] if times.size else np.zeros(0)
        self.starts_s = times[bounds[:-1]] if times.size else np.zeros(0)
        """Each step's earliest token: the server streams a step's tokens one request after
        another, so a request's own arrival time carries its place in that order; the earliest
        token of each step does not, and spans of steps are measured between those."""
        step_of = np.repeat(np.arange(bounds.size - 1), np.diff(bounds))
        last = np.asarray([self.started[o].out_tokens - 1 for o in owner.tolist()]) == index
        first_of = {int(owner[j]): int(step_of[j]) for j in np.flatnonzero(index == 0).tolist()}
        self.first_step = {positions[o]: c for o, c in first_of.items()}
        self.last_step = {positions[int(owner[j])]: int(step_of[j]) for j in np.flatnonzero(last).tolist()}
        self.prompts = np.asarray([float(r.in_tokens) for r in self.started])
        self.batch = float(np.quantile(running_at(self.started, times), 0.99)) if times.size else 0.0
        n = self.ends.size
        decodes, context = np.zeros(n), np.zeros(n)
        for c in range(n):
            mine, k = owner[bounds[c] : bounds[c + 1]], index[bounds[c] : bounds[c + 1]]
            dec = k > 0
            decodes[c] = float(dec.sum())
            context[c] = float((self.prompts[mine[dec]] + k[dec]).sum())
        prompt_work = self._replay(decodes, owner, index, bounds, first_of, budget_tokens)
        self.decodes = _prefix(decodes)
        self.prompt = _prefix(prompt_work[0])
        self.context = _prefix(context + prompt_work[1])

    def _replay(  # noqa: PLR0917 - the replay's state, computed once by the caller
        self,
        decodes: FloatArray,
        owner: NDArray[np.int64],
        index: NDArray[np.int64],
        bounds: NDArray[np.int64],
        first_of: dict[int, int],
        budget_tokens: float,
    ) -> tuple[FloatArray, FloatArray]:
        """Prompt tokens and their contexts per step (class docstring)."""
        started, prompts = self.started, self.prompts
        n = decodes.size
        prompt, context = np.zeros(n), np.zeros(n)
        by_sent = sorted(range(len(started)), key=lambda i: started[i].sent_s)
        remaining = prompts.copy()
        reach = np.ceil(prompts / max(budget_tokens - self.batch, 1.0))
        queued = 0
        for c in range(n):
            lo, hi = bounds[c], bounds[c + 1]
            done = sorted(set(owner[lo:hi][index[lo:hi] == 0].tolist()), key=lambda i: started[i].sent_s)
            start_s = self.ends[c - 1] - self.gap_s / 2.0 if c else -np.inf
            while queued < len(by_sent) and started[by_sent[queued]].sent_s < start_s:
                queued += 1
            waiting = [
                i
                for i in by_sent[:queued]
                if remaining[i] > 0 and i not in done and first_of.get(i, n) - c <= reach[i]
            ]
            left = budget_tokens - decodes[c] if budget_tokens > 0 else 0.0
            partial = sum(1 for i in waiting if remaining[i] < prompts[i])
            seats = self.batch - decodes[c] - len(done) - partial
            for i in done:
                prompt[c] += remaining[i]
                context[c] += prompts[i]
                left -= remaining[i]
                remaining[i] = 0.0
            for i in waiting:
                fresh = remaining[i] == prompts[i]
                if left <= 0 or (fresh and seats < 1):
                    break
                chunk = min(remaining[i], left)
                remaining[i] -= chunk
                left -= chunk
                seats -= 1 if fresh else 0
                prompt[c] += chunk
                context[c] += prompts[i] - remaining[i]
        return prompt, context

    def span_ms(self, request: int) -> float:
        """Time from the step of the request's first token to the step of its last (ms)."""
        return (
            float(self.starts_s[self.last_step[request]] - self.starts_s[self.first_step[request]]) * 1000.0
        )

    def window(self, request: int) -> tuple[float, float, float]:
        """Decodes, prompt tokens and context of the steps after the one of the request's first
        token, up to the one of its last (by step, not by time: a step's tokens may reach the
        client spread out)."""
        lo, hi = self.first_step[request] + 1, self.last_step[request] + 1
        return _span(self.decodes, lo, hi), _span(self.prompt, lo, hi), _span(self.context, lo, hi)


def _sorted_tokens(
    started: Sequence[RequestTimeline],
) -> tuple[FloatArray, NDArray[np.int64], NDArray[np.int64]]:
    """Every token's arrival time, request (position in ``started``) and index, by time."""
    if not started:
        return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    times = np.concatenate([np.asarray(r.token_s) for r in started])
    owner = np.concatenate([np.full(r.out_tokens, i, dtype=np.int64) for i, r in enumerate(started)])
    index = np.concatenate([np.arange(r.out_tokens, dtype=np.int64) for r in started])
    order = np.argsort(times, kind="stable")
    return times[order], owner[order], index[order]


def _step_bounds(times: FloatArray, owner: NDArray[np.int64], tolerance_s: float) -> list[int]:
    """Start index of each step in time-sorted tokens, and the end: a step ends where the next
    token comes more than ``tolerance_s`` after the previous one, or belongs to a request that
    already has a token in the step (one token per request per step); so delivery jitter below
    half a step neither splits a step nor merges two."""
    bounds = [0]
    seen: set[int] = set()
    for i in range(times.size):
        if i and (times[i] - times[i - 1] > tolerance_s or int(owner[i]) in seen):
            bounds.append(i)
            seen = set()
        seen.add(int(owner[i]))
    bounds.append(int(times.size))
    return bounds


def median_gap_s(timelines: Sequence[RequestTimeline]) -> float:
    """Median gap between consecutive tokens of a request, over all requests (0 without any)."""
    gaps = [np.diff(np.asarray(r.token_s)) for r in timelines if r.out_tokens > 1]
    return float(np.median(np.concatenate(gaps))) if gaps else 0.0


def running_at(timelines: Sequence[RequestTimeline], t_s: FloatArray) -> FloatArray:
    """Requests between their first and last token (inclusive) at each time: the batch the
    engine decodes, as the client sees it (requests that wait for a seat have no token yet)."""
    firsts = np.sort([r.token_s[0] for r in timelines if r.token_s])
    lasts = np.sort([r.token_s[-1] for r in timelines if r.token_s])
    started = np.searchsorted(firsts, t_s, side="right")
    ended = np.searchsorted(lasts, t_s, side="left")
    return np.asarray(started - ended, dtype=np.float64)


def _span(prefix: FloatArray, lo: int, hi: int) -> float:
    return float(prefix[hi] - prefix[lo])


def _prefix(values: FloatArray) -> FloatArray:
    return np.concatenate(([0.0], np.cumsum(values)))


def _pool(timelines: Sequence[RequestTimeline]) -> _Pool:
    t_parts, k_parts, p_parts = [], [], []
    for r in timelines:
        if not r.token_s:
            continue
        n = len(r.token_s)
        t_parts.append(np.asarray(r.token_s, dtype=np.float64))
        k_parts.append(np.arange(n, dtype=np.float64))
        p_parts.append(np.full(n, float(r.in_tokens)))
    if not t_parts:
        empty = np.zeros(1)
        return _Pool(np.zeros(0), empty, empty, empty, empty, np.zeros(0), empty, empty)
    t, k, p = np.concatenate(t_parts), np.concatenate(k_parts), np.concatenate(p_parts)
    order = np.argsort(t, kind="stable")
    t, k, p = t[order], k[order], p[order]
    first = k == 0
    decode = ~first
    groups_t, groups_w = _prefill_groups(timelines, t[first], p[first])
    return _Pool(
        t_s=t,
        tokens=_prefix(np.ones_like(t)),
        decodes=_prefix(decode.astype(np.float64)),
        prompt=_prefix(np.where(first, p, 0.0)),
        context=_prefix(np.where(first, p, p + k)),
        groups_t_s=groups_t,
        groups=_prefix(np.ones_like(groups_t)),
        groups_weight=_prefix(groups_w),
    )


def _prefill_groups(
    timelines: Sequence[RequestTimeline], first_t_s: FloatArray, prompts: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Prefill iterations (first tokens arriving together): the time of each (its last first
    token) and ``prompt_sum * n_after``, n_after the requests running just after it."""
    if not first_t_s.size:
        return np.zeros(0), np.zeros(0)
    tolerance = _PREFILL_GROUP_SHARE * median_gap_s(timelines)
    starts = np.flatnonzero(np.concatenate(([True], np.diff(first_t_s) > tolerance)))
    ends = np.append(starts[1:], first_t_s.size) - 1
    group_t = first_t_s[ends]
    prompt_sum = np.add.reduceat(prompts, starts)
    n_after = running_at(timelines, group_t + tolerance)
    return group_t, prompt_sum * n_after
