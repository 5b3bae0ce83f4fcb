"""The profile report: Markdown text and a PNG of predicted against measured curves.

Role: presentation of :func:`advisor.profile.report_of`'s dictionary. The PNG needs matplotlib
(the ``plots`` extra); without it :func:`write_plot` returns a note and the profile is written
anyway (the numbers are all in the Markdown and the JSON).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Profile: {r['model']} on {r['accelerator']} ({r['schema']} schema)",
        "",
        f"Endpoint {r['endpoint']} (serves {r['served']}); {r['requests']} requests "
        f"({r['incomplete']} incomplete){'; ' + r['stopped'] if r['stopped'] else ''}.",
        "",
        f"**Verdict: {r['verdict']}**",
        "",
        "| parameter (ms) | value | std error |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {k} | {v:.6g} | {r['std_err'][k]:.2g} |" for k, v in r["params"].items()]
    lines += [
        "",
        f"Fit over {r['rows']} requests: R^2 of the per-request ITL {_f(r['r2_itl'], 4)}, |relative "
        f"residual| median {r['median_abs_residual']:.2%}, 90th percentile {r['p90_abs_residual']:.2%}. "
        f"Batch {r['batch']}.",
        "",
        "| in | out | clients | requests | req/s | TTFT ms | ITL ms | ITL fit ms | batch | server running "
        "| waiting |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in r["levels"]:
        lines.append(
            f"| {lv['in']} ({_f(lv['in_served'], 4)}) | {lv['out']} | {lv['clients']} | {lv['requests']} | "
            f"{_f(lv['throughput_rps'])} | {_f(lv['ttft_ms'], 4)} | {_f(lv['itl_ms'], 4)} | "
            f"{_f(lv['itl_fit_ms'], 4)} | {_f(lv['batch'])} | {_f(lv['server_running'])} | "
            f"{_f(lv['server_waiting'])} |"
        )
    lines += ["", "Saturation (completions/s with the batch full):", ""]
    for s in r["shapes"]:
        lines.append(f"- in {s['in']} / out {s['out']}: {s['reason']}")
    for c in r["saturation"]:
        lines.append(
            f"- in {c['in']} / out {c['out']}: measured {c['measured_rps']:.4g} req/s, the fit's request "
            f"times give {c['fit_rps']:.4g}"
        )
    for m in r["model_saturation"]:
        lines.append(
            f"- in {m['in']} / out {m['out']}: the optimizer's queueing model (Poisson arrivals) reads "
            f"the parameters as {m['model_rps']:.4g} req/s"
        )
    lines += [
        "",
        f"Mean TTFT / ITL over the sweep: client {_f(r['client_mean_ttft_ms'], 4)} / "
        f"{_f(r['client_mean_itl_ms'], 4)} ms; server /metrics {_f(r['server_mean_ttft_ms'], 4)} / "
        f"{_f(r['server_mean_itl_ms'], 4)} ms.",
    ]
    return "\n".join(lines)


def write_plot(r: dict[str, Any], path: Path) -> str:
    """Measured and fitted ITL and the throughput per level, one line per shape; a note when
    matplotlib is missing ("" when written)."""
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return (
            "profile.png not written: matplotlib is not installed (pip install 'inferno-autoscaler[plots]')"
        )
    fig, (ax_itl, ax_rate) = plt.subplots(1, 2, figsize=(11, 4.2))
    shapes = sorted({(lv["in"], lv["out"]) for lv in r["levels"]})
    for shape in shapes:
        rows = [lv for lv in r["levels"] if (lv["in"], lv["out"]) == shape]
        clients = [lv["clients"] for lv in rows]
        label = f"in {shape[0]} / out {shape[1]}"
        line = ax_itl.plot(clients, [lv["itl_ms"] for lv in rows], "o", label=f"{label} measured")[0]
        ax_itl.plot(
            clients, [lv["itl_fit_ms"] for lv in rows], "-", color=line.get_color(), label=f"{label} fit"
        )
        ax_rate.plot(
            clients, [lv["throughput_rps"] for lv in rows], "o-", color=line.get_color(), label=label
        )
    for m in r["saturation"]:
        ax_rate.axhline(m["fit_rps"], linestyle=":", color="grey")
    ax_itl.set(
        xscale="log", xlabel="clients", ylabel="mean ITL (ms)", title=f"ITL: measured vs fit ({r['schema']})"
    )
    ax_rate.set(
        xscale="log", xlabel="clients", ylabel="completions/s", title="throughput (dotted: fit at saturation)"
    )
    ax_itl.legend(fontsize=7)
    ax_rate.legend(fontsize=7)
    fig.suptitle(
        f"{r['model']} on {r['accelerator']}: R^2 {r['r2_itl']:.3f}, {r['verdict']}"[:110], fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""
