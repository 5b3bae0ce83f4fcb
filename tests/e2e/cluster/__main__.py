"""`python -m e2e.cluster` (with PYTHONPATH=tests): run the local cluster and Prometheus by hand.

Role: the manual entry point behind the real-cluster demo and debugging sessions. It starts a
`LocalCluster` with a GPU fleet and a `LocalPrometheus`, writes their addresses to a JSON state
file (for other processes: demo scripts, the controller under test), prints how to use them, and
stops everything on Ctrl-C or SIGTERM.

    PYTHONPATH=tests python -m e2e.cluster --fleet NVIDIA-L4=2x4,NVIDIA-A100-SXM4-80GB=1x8
    KUBECONFIG=$(jq -r .kubeconfig ~/.cache/inferno-e2e/state.json) kubectl get nodes
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .binaries import cache_root
from .local_cluster import LocalCluster
from .nodes import GPU_PRODUCTS
from .prometheus import LocalPrometheus

DEFAULT_FLEET = ",".join(
    [
        "NVIDIA-A100-SXM4-80GB=2x8",
        "NVIDIA-H100-80GB-HBM3=2x8",
        "NVIDIA-L40S=2x4",
        "NVIDIA-L4=2x4",
        "AMD-Instinct-MI300X=1x8",
    ]
)


def parse_fleet(text: str) -> list[tuple[str, int, int]]:
    """ "PRODUCT=NODESxGPUS,..." -> [(product, nodes, gpus_per_node)]; e.g. "NVIDIA-L4=2x4"."""
    fleet = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            product, shape = item.split("=")
            count, gpus = (int(v) for v in shape.lower().split("x"))
        except ValueError:
            raise SystemExit(f"bad fleet item {item!r}: expected PRODUCT=NODESxGPUS") from None
        if product not in GPU_PRODUCTS:
            raise SystemExit(f"unknown product {product!r}; known: {', '.join(GPU_PRODUCTS)}")
        fleet.append((product, count, gpus))
    return fleet


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.cluster", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--fleet", default=DEFAULT_FLEET, help="PRODUCT=NODESxGPUS,... (default: %(default)s)"
    )
    parser.add_argument("--state-file", type=Path, default=cache_root() / "state.json")
    parser.add_argument("--no-prometheus", action="store_true", help="start only the cluster")
    parser.add_argument("--keep-dir", action="store_true", help="keep logs and certs after stop")
    args = parser.parse_args(argv)
    fleet = parse_fleet(args.fleet)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster = LocalCluster(keep_dir=args.keep_dir)
    prom = None if args.no_prometheus else LocalPrometheus(keep_dir=args.keep_dir)
    try:
        cluster.start()
        for product, count, gpus in fleet:
            cluster.add_gpu_nodes(product, count=count, gpus_per_node=gpus, pool="demo")
        if prom is not None:
            prom.start()
        state = {
            "server": cluster.server_url,
            "kubeconfig": str(cluster.kubeconfig_path),
            "prometheus": prom.url if prom else None,
            "prometheus_targets_dir": str(prom.root / "targets") if prom else None,
            "logs": str(cluster.log_dir),
        }
        args.state_file.parent.mkdir(parents=True, exist_ok=True)
        args.state_file.write_text(json.dumps(state, indent=2) + "\n")
        print(json.dumps(state, indent=2))
        print(f"export KUBECONFIG={cluster.kubeconfig_path}\n(state in {args.state_file}; Ctrl-C to stop)")
        stop.wait()  # the signal handler sets it; nothing else needs this thread
    finally:
        if prom is not None:
            prom.stop()
        cluster.stop()
        args.state_file.unlink(missing_ok=True)
        print("[inferno-e2e] stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
