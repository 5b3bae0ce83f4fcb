"""Markdown and PNG output of the model-accuracy benchmark (:mod:`benchmarks.bench_accuracy`).

``write_report(after, before, out, meta)`` writes ``accuracy.md`` (headline shares, before/after
summary, the error table by (pair, batch) x load, the findings), ``accuracy_curves.png``
(predicted against observed mean TTFT and ITL per (pair, batch)) and ``accuracy_heatmap.png``
(relative error of mean TTFT and ITL by (pair, batch) x load).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from scipy import stats

from benchmarks.accuracy_findings import FINDINGS
from benchmarks.accuracy_grid import PointResult

TOLERANCE = 0.10
PRIOR_LABEL = "published before issue 22"
"""The published run before issue 22's engine and step model (``accuracy_prior.*``): that model
against that engine, on its own runs."""
HEADLINE_BELOW = 0.90
"""The target: within 10 % for every load strictly below 90 % of saturation."""


def _key(p: PointResult) -> tuple[str, str, int]:
    return (p.model, p.accelerator, p.batch)


def _groups(points: Sequence[PointResult]) -> dict[tuple[str, str, int], list[PointResult]]:
    groups: dict[tuple[str, str, int], list[PointResult]] = {}
    for p in points:
        groups.setdefault(_key(p), []).append(p)
    return groups


def _ci_note(points: Sequence[PointResult]) -> str:
    below = sorted(p.obs_ttft_ci for p in points if p.load < HEADLINE_BELOW - 1e-9 and p.obs_ttft_ci >= 0)
    return f"{100 * below[len(below) // 2]:.1f} %" if below else "-"


def error_interval(predicted: float, observed: float, ci: float) -> tuple[float, float]:
    """The relative error's range when the observed mean lies anywhere in ``observed * (1 +- ci)``
    (its 95 % interval); ``(-inf, inf)`` when the interval reaches 0; the point error itself when
    there is no interval (NaN ``ci``)."""
    if math.isnan(ci):
        error = (predicted - observed) / observed
        return error, error
    if ci >= 1.0:
        return -math.inf, math.inf
    return predicted / (observed * (1.0 + ci)) - 1.0, predicted / (observed * (1.0 - ci)) - 1.0


def ttft_verdict(p: PointResult) -> str:
    """``within`` (|error| <= 10 %), ``unresolved`` (outside, but the error's 95 % interval reaches
    back inside +-10 %: the run cannot tell) or ``outside`` (the whole interval is beyond 10 %)."""
    if abs(p.ttft_error) <= TOLERANCE:
        return "within"
    low, high = error_interval(p.pred_ttft_mean_ms, p.obs_ttft_mean_ms, p.obs_ttft_ci)
    return "unresolved" if low <= TOLERANCE and high >= -TOLERANCE else "outside"


def share_within(points: Sequence[PointResult], below: float, metric: str) -> tuple[int, int]:
    """(count, total) over points with load < ``below``. Metrics: ``ttft``, ``itl``, ``both``
    within 10 %; ``noise``: ITL within 10 % and TTFT within or unresolved; ``outside``: TTFT
    shown to be more than 10 % off (its whole 95 % interval beyond)."""
    chosen = [p for p in points if p.load < below - 1e-9]
    ok = 0
    for p in chosen:
        verdict = ttft_verdict(p)
        ttft_ok = verdict == "within"
        itl_ok = abs(p.itl_error) <= TOLERANCE
        ok += {
            "ttft": ttft_ok,
            "itl": itl_ok,
            "both": ttft_ok and itl_ok,
            "noise": verdict != "outside" and itl_ok,
            "outside": verdict == "outside",
        }[metric]
    return ok, len(chosen)


def _pct(pair: tuple[int, int]) -> str:
    ok, total = pair
    return f"{ok}/{total} ({100.0 * ok / total:.0f} %)" if total else "-"


def _abs_stats(values: Sequence[float]) -> str:
    finite = sorted(abs(v) for v in values if not math.isnan(v))
    if not finite:
        return "-"
    median = finite[len(finite) // 2]
    return f"median {100 * median:.1f} %, max {100 * finite[-1]:.1f} %"


def summary_lines(label: str, points: Sequence[PointResult]) -> list[str]:
    below = [p for p in points if p.load < HEADLINE_BELOW - 1e-9]
    return [
        f"| {label} | {_pct(share_within(points, HEADLINE_BELOW, 'ttft'))} "
        f"| {_pct(share_within(points, HEADLINE_BELOW, 'itl'))} "
        f"| {_pct(share_within(points, HEADLINE_BELOW, 'both'))} "
        f"| {_abs_stats([p.ttft_error for p in below])} | {_abs_stats([p.itl_error for p in below])} "
        f"| {_pct(share_within(points, 1.0, 'both'))} | {_ci_note(points)} "
        f"| {_pct(share_within(points, HEADLINE_BELOW, 'noise'))} "
        f"| {_pct(share_within(points, HEADLINE_BELOW, 'outside'))} |"
    ]


def error_table(points: Sequence[PointResult]) -> list[str]:
    loads = sorted({p.load for p in points})
    head = "| model | accelerator | N | sat. req/s | " + " | ".join(f"{100 * x:.0f} %" for x in loads) + " |"
    lines = [head, "|" + "---|" * (4 + len(loads))]
    for (model, acc, batch), group in _groups(points).items():
        by_load = {p.load: p for p in group}
        cells = []
        for x in loads:
            p = by_load.get(x)
            cells.append("-" if p is None else _cell(p))
        lines.append(
            f"| {model} | {acc} | {batch} | {group[0].saturation_rps:.4f} | " + " | ".join(cells) + " |"
        )
    return lines


def mean_with_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean of the finite values and the half-width of its 95 % interval (Student t); NaN if < 2."""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2:
        return (finite[0] if finite else math.nan), math.nan
    n = len(finite)
    mean = sum(finite) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def load_table(labelled: Sequence[tuple[str, Sequence[PointResult]]]) -> list[str]:
    """Mean signed TTFT error over the rows (pairs x batches) at each load, +- its 95 % interval
    over the rows: with independent runs per point, a systematic model error at a load shows
    here even when each point alone is too noisy to resolve it."""
    loads = sorted({p.load for _, points in labelled for p in points})
    lines = [
        "| model | " + " | ".join(f"{100 * x:.0f} %" for x in loads) + " |",
        "|---|" + "---|" * len(loads),
    ]
    for label, points in labelled:
        cells = []
        for x in loads:
            mean, half = mean_with_interval([p.ttft_error for p in points if p.load == x])
            cells.append(f"{100 * mean:+.1f} &plusmn; {100 * half:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _cell(p: PointResult) -> str:
    """``TTFT error [+-its 95 % interval] / ITL error``, in %; ``*`` marks a TTFT shown outside 10 %."""
    ci = "" if math.isnan(p.obs_ttft_ci) else f"&plusmn;{100 * p.obs_ttft_ci:.0f}"
    mark = "*" if ttft_verdict(p) == "outside" else ""
    return f"{100 * p.ttft_error:+.0f}{ci}{mark} / {100 * p.itl_error:+.0f}"


def write_report(
    after: Sequence[PointResult],
    before: Sequence[PointResult] | None,
    out: Path,
    meta: dict[str, object],
    schemas: Sequence[PointResult] | None = None,
    prior: Sequence[PointResult] | None = None,
) -> None:
    """``prior``: the model as it was before the latest change, re-predicted on the same runs."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Model accuracy: predicted against emulated TTFT and ITL",
        "",
        "Reproduce: `nice -n 10 .venv/bin/python -m benchmarks.bench_accuracy` "
        f"({meta.get('requests')} expected arrivals per seed and point, {meta.get('seeds')} seeds, "
        f"{meta.get('cpu_s')} s CPU). Raw numbers: `accuracy_after.csv` / `.json`"
        + (
            ", baseline `accuracy_before.*`: the model before this work (commit 4d628b1) re-predicted"
            " on the same observations by `benchmarks/accuracy_baseline.py` (see its docstring)."
            if before
            else "."
        )
        + (
            " `accuracy_prior.*`: the run published before issue 22 (as of commit ea51599): the model before"
            " the step model, against the engine before it followed vLLM's scheduler, on its own runs."
            if prior
            else ""
        ),
        "",
        "Each point: one emulated replica (prefill-first vLLM scheduling for this v0.6 data, Poisson",
        "arrivals, geometric token counts, mean 128 in / 1024 out) at a share of the *emulator's*",
        "measured saturation for that batch; the model is `optimizer.model.predict` with the",
        "optimizer's default settings. Error = (predicted - observed) / observed, mean against mean.",
        "Every point averages independent runs with seeds of its own; `+-` is the 95 % confidence",
        "interval of the observed mean TTFT (Student t over the runs), `*` marks a TTFT error whose",
        "whole interval lies beyond 10 % (the model is shown to be off, not just the run noisy).",
        "",
        "## Headline: share of grid points within 10 % (loads below 90 %)",
        "",
        "| model | TTFT | ITL | both | abs TTFT error | abs ITL error | both, all loads "
        "| median TTFT 95 % CI | both, TTFT within 10 % or its CI reaching it | TTFT shown > 10 % off |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if before:
        lines += summary_lines("baseline model (4d628b1)", before)
    if prior:
        lines += summary_lines(PRIOR_LABEL, prior)
    lines += summary_lines("this model", after)
    lines += [
        "",
        "## Mean TTFT error by load, over the 23 rows (in %, +- its 95 % interval over the rows)",
        "",
    ]
    labelled = [("baseline model (4d628b1)", before)] if before else []
    labelled += [(PRIOR_LABEL, prior)] if prior else []
    lines += load_table([*labelled, ("this model", after)])
    lines += ["", "## Relative error by point: mean TTFT / mean ITL, in %", ""]
    lines += error_table(after)
    if before:
        lines += ["", "### Baseline model, same grid", ""]
        lines += error_table(before)
    if schemas:
        lines += [
            "",
            "## Other data generations (spot check, not in samples/large)",
            "",
            "granite_13b/A100-like parameters in the v0.1 (decode-only) and v0.7 (iteration, chunked",
            "prefill in the emulator) schemas, N = 16. Relative error of mean TTFT / mean ITL, in %:",
            "",
        ]
        lines += error_table(schemas)
    lines += ["", FINDINGS.strip()]
    lines += ["", "Plots: `accuracy_curves.png`, `accuracy_heatmap.png`."]
    (out / "accuracy.md").write_text("\n".join(lines) + "\n")
    plot_curves(after, before, out / "accuracy_curves.png")
    plot_heatmap(after, out / "accuracy_heatmap.png")


def plot_curves(after: Sequence[PointResult], before: Sequence[PointResult] | None, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - optional heavy import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    groups = _groups(after)
    old = _groups(before) if before else {}
    cols = 4
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows * 2, cols, figsize=(4.2 * cols, 3.0 * rows * 2), squeeze=False)
    for i, (key, group) in enumerate(groups.items()):
        loads = [p.load * 100 for p in group]
        for j, (metric, obs, pred) in enumerate(
            (
                ("TTFT", "obs_ttft_mean_ms", "pred_ttft_mean_ms"),
                ("ITL", "obs_itl_mean_ms", "pred_itl_mean_ms"),
            )
        ):
            ax = axes[(i // cols) * 2 + j][i % cols]
            ax.plot(loads, [getattr(p, obs) for p in group], "ko-", ms=3, label="emulator")
            ax.plot(loads, [getattr(p, pred) for p in group], "b^-", ms=3, label="model")
            if key in old:
                ax.plot(loads, [getattr(p, pred) for p in old[key]], "r:", label="baseline model")
            if metric == "TTFT":
                ax.set_yscale("log")
            else:
                ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_title(f"{key[0]} {key[1]} N={key[2]}: {metric} (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("load, % of saturation", fontsize=7)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    for k in range(len(groups), rows * cols):
        axes[(k // cols) * 2][k % cols].axis("off")
        axes[(k // cols) * 2 + 1][k % cols].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_heatmap(points: Sequence[PointResult], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    groups = _groups(points)
    loads = sorted({p.load for p in points})
    labels = [f"{m} {a} N={b}" for m, a, b in groups]
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.32 * len(groups) + 1.5))
    for ax, attr, title in zip(axes, ("ttft_error", "itl_error"), ("mean TTFT", "mean ITL"), strict=True):
        grid = [[math.nan] * len(loads) for _ in groups]
        for r, group in enumerate(groups.values()):
            for p in group:
                grid[r][loads.index(p.load)] = 100 * getattr(p, attr)
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-30, vmax=30, aspect="auto")
        for r, row in enumerate(grid):
            for c, value in enumerate(row):
                if not math.isnan(value):
                    ax.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(loads)), [f"{100 * x:.0f}" for x in loads], fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("load, % of emulated saturation")
        ax.set_title(f"{title}: (predicted - observed) / observed, % (colour clipped at 30)", fontsize=9)
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
