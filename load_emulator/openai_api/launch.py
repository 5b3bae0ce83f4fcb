"""Start emulated vLLM replicas that speak the OpenAI API, each on its own loopback port.

:func:`start_replicas` (async) builds one fleet engine over a Deployment of ``replicas`` Ready pods
of :class:`ReplicaParams`, serves each pod on 127.0.0.1 (``base_port + i``, or free ports when
``base_port`` is 0) and paces the engine on the wall clock; :class:`OpenAIReplicas` holds the
URLs and stops everything. The command line (``python -m load_emulator serve-openai``) wraps it and
prints one JSON line ``{"urls": [...], "model": ..., "tokenizer": ...}`` once the ports listen::

    python -m load_emulator serve-openai --replicas 2 --model-data samples/small/model-data.json \\
        --model granite_13b --accelerator A100 --port 8100
    python -m load_emulator serve-openai --model emu --step-ms 20,0.05,0.04,0.0001 --max-batch 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web
from pydantic import ValidationError

from contract.data.catalog import ModelData
from contract.data.loader import DataError, format_validation_error, parse_json
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from load_emulator.cluster import DeploymentState, PodState
from load_emulator.engine import FleetEngine
from load_emulator.openai_api.app import Endpoint, openai_app
from load_emulator.openai_api.live import LiveEngine
from load_emulator.openai_api.params import OutputLengths, ReplicaParams
from load_emulator.openai_api.text import TOKENIZER_DIR
from load_emulator.patterns import stable_seed

LOOPBACK = "127.0.0.1"
NAMESPACE = "emulated"


@dataclass
class StaticCluster:
    """A cluster view of fixed Deployments whose pods are Ready from t=0."""

    states: tuple[DeploymentState, ...]

    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        return self.states

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        return None


def pod_names(deployment: str, replicas: int) -> list[str]:
    return [f"{deployment}-{i}" for i in range(replicas)]


@dataclass
class OpenAIReplicas:
    """Running replicas: ``urls[i]`` is pod ``i``'s base URL (``http://127.0.0.1:PORT``)."""

    live: LiveEngine
    urls: list[str]
    pods: list[str]
    _runners: list[web.AppRunner] = field(repr=False)
    _task: asyncio.Task[None] = field(repr=False)
    _stop: asyncio.Event = field(repr=False)

    async def stop(self) -> None:
        self._stop.set()
        await self._task
        for runner in self._runners:
            await runner.cleanup()

    async def __aenter__(self) -> OpenAIReplicas:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def start_replicas(
    params: ReplicaParams,
    replicas: int = 1,
    *,
    base_port: int = 0,
    deployment: str = "emulated-vllm",
    seed: int = 0,
    duration_s: float = math.inf,
) -> OpenAIReplicas:
    """Serve ``replicas`` emulated vLLM pods of ``params`` on loopback; see the module doc."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    pods = pod_names(deployment, replicas)
    state = DeploymentState(
        namespace=NAMESPACE, name=deployment, model=params.model, accelerator=params.accelerator,
        max_batch=params.max_batch, replicas=replicas,
        pods=tuple(PodState(p, params.accelerator, params.max_batch, 0.0) for p in pods),
    )  # fmt: skip
    catalog = {(params.model, params.accelerator): params.entry()}
    engine = FleetEngine(catalog, StaticCluster((state,)), {}, params.engine_config(), seed=seed)
    live = LiveEngine(engine)
    runners: list[web.AppRunner] = []
    urls: list[str] = []
    created = int(time.time())
    try:
        for i, pod in enumerate(pods):
            endpoint = Endpoint(live, params, deployment, NAMESPACE, deployment, pod,
                                OutputLengths(params, stable_seed(seed, pod)), created)  # fmt: skip
            runner = web.AppRunner(openai_app(endpoint), access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, LOOPBACK, base_port + i if base_port else 0)
            await site.start()
            urls.append(f"http://{LOOPBACK}:{runner.addresses[0][1]}")
    except BaseException:
        for runner in runners:
            await runner.cleanup()
        raise
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop, duration_s=duration_s))
    return OpenAIReplicas(live, urls, pods, runners, task, stop)


# --- command line ------------------------------------------------------------------------------

PERF_FLAGS = {
    "--step-ms": ("fixed,perDecode,perPrefillToken,perContextToken", StepPerf, 4),
    "--iteration-ms": ("alpha,beta,gamma", IterationPerf, 3),
    "--prefill-decode-ms": ("alpha,beta,gamma,delta", PrefillDecodePerf, 4),
    "--decode-only-ms": ("alpha,beta", DecodeOnlyPerf, 2),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument(
        "--port", type=int, default=8100, help="first replica's loopback port (0: free ports)"
    )
    parser.add_argument("--model", required=True, help="served model name (and the model-data entry's)")
    parser.add_argument(
        "--model-data", help="model-data.json (or a samples directory) to read the replica from"
    )
    parser.add_argument("--accelerator", help="the model-data entry's accelerator")
    for flag, (names, _, _) in PERF_FLAGS.items():
        parser.add_argument(flag, metavar=names.upper(), help=f"perf parameters in ms: {names}")
    parser.add_argument("--max-batch", type=int, help="--max-num-seqs (default: the entry's, else 256)")
    parser.add_argument(
        "--kv-cache-tokens", type=int, help="KV cache per replica in tokens (default: unlimited)"
    )
    parser.add_argument("--max-num-batched-tokens", type=int, default=2048)
    parser.add_argument("--scheduling", default="chunked", choices=("chunked", "prefill-first"))
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--mean-output-tokens", type=float, default=256.0,
                        help="mean output length of requests without ignore_eos")  # fmt: skip
    parser.add_argument("--duration-s", type=float, default=math.inf)
    parser.add_argument("--seed", type=int, default=0)


def params_from_args(args: argparse.Namespace) -> ReplicaParams:
    """The replica of the command line: a model-data entry, or one ``--*-ms`` perf flag."""
    given = [flag for flag in PERF_FLAGS if getattr(args, flag[2:].replace("-", "_")) is not None]
    overrides: dict[str, object] = {
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "scheduling": args.scheduling,
        "max_model_len": args.max_model_len,
        "mean_output_tokens": args.mean_output_tokens,
    }
    if args.max_batch is not None:
        overrides["max_batch"] = args.max_batch
    if args.kv_cache_tokens is not None:
        overrides["kv_cache_tokens"] = args.kv_cache_tokens
    if args.model_data:
        if given:
            raise ValueError(f"give --model-data or {given[0]}, not both")
        path = Path(args.model_data)
        data = _load_model_data(path / "model-data.json" if path.is_dir() else path)
        entries = [m for m in data.models if m.name == args.model and args.accelerator in (None, m.acc)]
        if len(entries) != 1:
            known = sorted(f"{m.name} on {m.acc}" for m in data.models)
            raise ValueError(
                f"need one entry for model {args.model!r} on {args.accelerator!r} in {path}; has {known}"
            )
        return ReplicaParams.from_entry(entries[0], **overrides)
    if len(given) != 1:
        raise ValueError(f"give --model-data or exactly one of {', '.join(PERF_FLAGS)}")
    names, cls, count = PERF_FLAGS[given[0]]
    raw = getattr(args, given[0][2:].replace("-", "_"))
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError as exc:
        raise ValueError(f"{given[0]} takes {count} numbers ({names}), got {raw!r}") from exc
    if len(values) != count or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"{given[0]} takes {count} finite numbers >= 0 ({names}), got {raw!r}")
    perf: PerfParams = cls(*values)
    return ReplicaParams(model=args.model, perf=perf, accelerator=args.accelerator or "EMULATED",
                         **overrides)  # type: ignore[arg-type]  # fmt: skip


def _load_model_data(path: Path) -> ModelData:
    payload = parse_json(path.read_bytes(), str(path))
    try:
        return ModelData.model_validate(payload)
    except ValidationError as exc:
        raise DataError(format_validation_error(exc, payload, str(path), by_file=False)) from None


async def serve_openai(params: ReplicaParams, args: argparse.Namespace) -> int:
    fleet = await start_replicas(params, args.replicas, base_port=args.port, seed=args.seed,
                                 duration_s=args.duration_s)  # fmt: skip
    print(
        json.dumps({"urls": fleet.urls, "model": params.model, "tokenizer": str(TOKENIZER_DIR)}), flush=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, fleet._task], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    await fleet.stop()
    print(json.dumps({"lag": fleet.live.lag.summary()}), flush=True)
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        params = params_from_args(args)
    except (DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return asyncio.run(serve_openai(params, args))
