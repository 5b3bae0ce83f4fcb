"""Build Go main packages of a released module into a binary directory, with progress output.

Role: generic helper behind `binaries.py` and `addons.py` (:func:`module_dir` gives both a
module's source, for the files they copy out of it). For each target it writes a go.mod
in a cache work dir (never in the repo) that requires the module at a release; for
k8s.io/kubernetes it also `replace`s every staging module (k8s.io/api, ...) with its matching
v0.x tag, because the kubernetes go.mod points them at ./staging, which a dependent cannot see.
Binaries land in a temp dir first and are renamed into place, so an interrupted build never
leaves a half-written binary that a later run would trust. Standard library only.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GO_DIRECTIVE = "1.26.0"
PROGRESS_EVERY_S = 30.0


@dataclass(frozen=True)
class GoTarget:
    name: str
    module: str
    version: str
    packages: dict[str, str]  # binary name -> Go package path
    staging_version: str | None = None
    extra_ldflags: str = ""
    env: dict[str, str] = field(default_factory=dict)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # local: never fetch another toolchain; CGO off: no C compiler needed and static binaries.
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOWORK="off", GOFLAGS="-mod=mod -buildvcs=false")
    return env


def module_dir(module: str, version: str, timeout_s: float = 900.0) -> Path:
    """The module's source at that version in the Go module cache (downloaded first if needed)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=False,
        cwd=Path.home(),
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    info = json.loads(out.stdout or "{}")
    if "Dir" not in info:
        raise RuntimeError(f"cannot download {module}@{version}: {info.get('Error', out.stderr)}")
    return Path(info["Dir"])


def _log(msg: str) -> None:
    print(f"[inferno-e2e] {msg}", flush=True)


def _run(cmd: list[str], cwd: Path, log_path: Path, label: str, timeout_s: float = 3600.0) -> None:
    """Run a go command, appending output to log_path and printing a progress line every 30 s."""
    started = time.monotonic()
    last_report = started
    lines = 0
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                lines += 1
                now = time.monotonic()
                if now - last_report >= PROGRESS_EVERY_S:
                    last_report = now
                    _log(f"{label}: {lines} lines of go output, {now - started:.0f}s (log: {log_path})")
                if now - started > timeout_s:
                    raise TimeoutError(f"{label} took more than {timeout_s:.0f}s")
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    if code != 0:
        tail = log_path.read_text().splitlines()[-25:]
        raise RuntimeError(f"{label} failed (exit {code}); last lines of {log_path}:\n" + "\n".join(tail))
    _log(f"{label}: done in {time.monotonic() - started:.0f}s")


def staging_modules(module: str, version: str, work: Path, log_path: Path) -> list[str]:
    """Read the module's own go.mod for its `k8s.io/x => ./staging/...` replace lines."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=False,
        cwd=work,
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "GoMod" not in info:
        log_path.write_text(out.stdout + out.stderr)
        raise RuntimeError(f"cannot download {module}@{version}: {info.get('Error', out.stderr)}")
    text = Path(info["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", text, re.MULTILINE)))


def write_go_mod(target: GoTarget, work: Path, log_path: Path) -> None:
    lines = [
        f"module inferno-e2e-build/{target.name}",
        "",
        f"go {GO_DIRECTIVE}",
        "",
        f"require {target.module} {target.version}",
    ]
    if target.staging_version:
        # go.mod must exist before `go mod download` will run in this directory.
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        lines += ["", "replace ("]
        lines += [
            f"\t{m} => {m} {target.staging_version}"
            for m in staging_modules(target.module, target.version, work, log_path)
        ]
        lines.append(")")
    (work / "go.mod").write_text("\n".join(lines) + "\n")


def build_target(target: GoTarget, work_root: Path, bin_dir: Path) -> None:
    todo = {b: p for b, p in target.packages.items() if not (bin_dir / b).exists()}
    if not todo:  # another install run built them while we waited for the lock
        return
    work = work_root / target.name
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "build.log"
    _log(f"{target.module}@{target.version}: resolving modules (log: {log_path})")
    write_go_mod(target, work, log_path)
    pkgs = [f"{p}@{target.version}" for p in todo.values()]
    _run(["go", "get", *pkgs], work, log_path, f"download {target.name}")
    ldflags = f"-s -w {target.extra_ldflags}".strip()
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bin_dir, prefix=".build-") as tmp:
        for binary, package in todo.items():
            cmd = [
                "go",
                "build",
                "-p",
                "2",
                "-trimpath",
                "-v",
                f"-ldflags={ldflags}",
                "-o",
                str(Path(tmp) / binary),
                package,
            ]
            _run(cmd, work, log_path, f"build {binary}")
            (Path(tmp) / binary).replace(bin_dir / binary)


def build_targets(targets: list[GoTarget], work_root: Path, bin_dir: Path) -> None:
    """Build each target in turn; a file lock keeps two install runs from racing on the cache."""
    work_root.mkdir(parents=True, exist_ok=True)
    with (work_root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        for target in targets:
            build_target(target, work_root, bin_dir)
        _log(f"all builds done in {time.monotonic() - started:.0f}s -> {bin_dir}")
