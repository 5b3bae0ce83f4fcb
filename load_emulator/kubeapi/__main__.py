"""``python -m load_emulator.kubeapi``: serve an emulated cluster on loopback until interrupted.

For poking at it by hand (``kubectl --kubeconfig <file> get deploy -w``) or for services started
by hand. It writes a kubeconfig, optionally adds GPU nodes (``--nodes a100=2,mi300x=1``: node
kind=count, each node with 8 GPUs labelled as the samples expect) and runs the built-in
controller with the given start-up delay. The embedded demo does not use this entry point; it
calls :func:`.server.start_kubeapi` in its own event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from . import builders
from .controller import BuiltinController, ControllerSettings
from .server import start_kubeapi
from .store import ObjectStore

GPU_NODES: dict[str, tuple[str, str]] = {
    "a100": ("nvidia.com/gpu", "NVIDIA-A100-SXM4-80GB"),
    "h100": ("nvidia.com/gpu", "NVIDIA-H100-80GB-HBM3"),
    "l40s": ("nvidia.com/gpu", "NVIDIA-L40S"),
    "l4": ("nvidia.com/gpu", "NVIDIA-L4"),
    "mi300x": ("amd.com/gpu", "AMD-Instinct-MI300X"),
}


def add_nodes(store: ObjectStore, spec: str, gpus_per_node: int = 8) -> list[str]:
    """Create nodes from ``kind=count,...`` (kinds: :data:`GPU_NODES`); returns their names."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        kind, _, count = part.partition("=")
        if kind not in GPU_NODES:
            raise ValueError(f"unknown node kind {kind!r}; known: {', '.join(GPU_NODES)}")
        resource, product = GPU_NODES[kind]
        for i in range(int(count or 1)):
            name = f"{kind}-{i}"
            label = f"{resource}.product"
            store.create(builders.node(name, {label: product}, {resource: gpus_per_node}))
            names.append(name)
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n", maxsplit=1)[0]
    parser = argparse.ArgumentParser(prog="python -m load_emulator.kubeapi", description=summary)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0: any free port")
    parser.add_argument("--kubeconfig", default="kubeconfig.emulated", help="where to write the kubeconfig")
    parser.add_argument("--token", default=None, help="require this bearer token; default: no auth")
    nodes = "a100=2,h100=1,l40s=1,l4=1,mi300x=1"
    parser.add_argument("--nodes", default=nodes, help="kind=count,...; '' for none")
    parser.add_argument("--startup-delay-s", type=float, default=5.0, help="seconds from binding to Ready")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    store = ObjectStore()
    add_nodes(store, args.nodes)
    controller = BuiltinController(store, settings=ControllerSettings(startup_delay_s=args.startup_delay_s))
    server = await start_kubeapi(port=args.port, token=args.token, controller=controller)
    path = server.write_kubeconfig(args.kubeconfig)
    print(f"emulated kube-apiserver at {server.url}; KUBECONFIG={path.resolve()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
