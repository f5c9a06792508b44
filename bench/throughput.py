#!/usr/bin/env python3
"""Throughput and peak memory of ``mailwarden triage`` against pflogsumm on generated logs.

The claims this checks: triage is at least 5x faster than pflogsumm on the same file, and
its memory does not grow with the length of the log (bounded maps, streaming). Both are
measured on files from ``bench/generate_logs.py`` so anyone can reproduce them.

Every tool runs as its own child process and is reaped with ``os.wait4``: the kernel's
rusage then gives the child's own CPU time and peak RSS without a wrapper such as
/usr/bin/time, whose output format and availability vary between systems. Note that Linux
reports ``ru_maxrss`` as the peak of the largest single process in the child's tree (reaped
descendants included), not the sum of parallel workers.

Usage::

    python bench/throughput.py [--lines 1000000] [--also 5000000] [--workdir bench/out]
        [--repeat 1] [--tools triage,pflogsumm,events] [--json results.json]

Always exits 0 when the measurements could be attempted, so it is usable before mailwarden
runs at all; a tool that fails is reported with the reason instead of figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GENERATOR = BENCH / "generate_logs.py"
TOOLS = ("triage", "pflogsumm", "events")


@dataclass
class Run:
    """One measured child process: what ran, how long, how much memory, how it ended."""

    tool: str
    argv: list[str]
    lines: int
    wall_s: float | None = None
    user_s: float | None = None
    sys_s: float | None = None
    max_rss_kib: int | None = None
    exit_code: int | None = None
    output_bytes: int | None = None
    error: str | None = None

    @property
    def lines_per_s(self) -> float | None:
        return self.lines / self.wall_s if self.wall_s else None


def measure(argv: list[str], stdout_path: str, timeout: float) -> tuple[float, int, object, str]:
    """Run ``argv`` once; return (wall seconds, exit code, rusage, stderr tail).

    The child is reaped with a blocking ``os.wait4`` so its rusage is its own, not an
    accumulated RUSAGE_CHILDREN that would mix in earlier runs, and the wall time has no
    polling slack. A child over ``timeout`` is killed through its pidfd (so only the process
    this function started) and reported as exit code -9.
    """
    with open(stdout_path, "wb") as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        pidfd = os.pidfd_open(proc.pid)  # a handle that cannot hit a recycled pid
        timer = threading.Timer(timeout, signal.pidfd_send_signal, (pidfd, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            os.close(pidfd)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped by wait4: keep Popen from polling a gone pid
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace").strip()
    return wall, code, usage, tail


def run_tool(
    tool: str, argv: list[str], lines: int, *, workdir: Path, repeat: int, timeout: float, check_json: bool
) -> Run:
    """Measure ``argv`` ``repeat`` times: best wall time, worst peak RSS."""
    result = Run(tool, argv, lines)
    out_path = workdir / f".{tool}.out" if check_json else os.devnull
    for _ in range(repeat):
        try:
            wall, code, usage, tail = measure(argv, str(out_path), timeout)
        except OSError as exc:
            result.error = f"{argv[0]}: {exc.strerror or exc}"
            return result
        if code != 0 and not (check_json and _valid_json(out_path)):
            last = tail.splitlines()[-1] if tail else "(no output on stderr)"
            result.error = f"exit {code}: {last}"
            result.exit_code = code
            return result
        if result.wall_s is None or wall < result.wall_s:
            result.wall_s = wall
            result.user_s = usage.ru_utime  # type: ignore[attr-defined]
            result.sys_s = usage.ru_stime  # type: ignore[attr-defined]
        rss = int(usage.ru_maxrss)  # type: ignore[attr-defined]  # KiB on Linux
        result.max_rss_kib = max(result.max_rss_kib or 0, rss)
        result.exit_code = code
    if check_json:
        result.output_bytes = Path(out_path).stat().st_size
        if not _valid_json(out_path):
            result.error = "exit 0 but stdout is not JSON"
        Path(out_path).unlink(missing_ok=True)
    return result


def _valid_json(path: str | Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            json.load(f)
    except (OSError, ValueError):
        return False
    return True


def mailwarden_command() -> list[str] | None:
    """How to start mailwarden: the venv's console script, its python -m, or PATH."""
    venv = REPO / ".venv" / "bin"
    if (venv / "mailwarden").exists():
        return [str(venv / "mailwarden")]
    if (venv / "python").exists():
        return [str(venv / "python"), "-m", "mailwarden"]
    found = shutil.which("mailwarden")
    return [found] if found else None


def ensure_log(lines: int, seed: int, workdir: Path, regenerate: bool) -> tuple[Path, str]:
    """Generate the log for ``lines`` (or reuse it when generator, seed and size match)."""
    path = workdir / f"mail-{lines}-s{seed}.log"
    params_path = path.with_suffix(".params.json")
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:16]
    want = {"lines": lines, "seed": seed, "generator": digest}
    if not regenerate and path.exists() and params_path.exists():
        try:
            have = json.loads(params_path.read_text(encoding="utf-8"))
        except ValueError:
            have = {}
        if {k: have.get(k) for k in want} == want:
            return path, f"cached (generated at {have.get('lines_per_s', '?')} lines/s)"
    argv = [
        sys.executable,
        str(GENERATOR),
        "--lines",
        str(lines),
        "--seed",
        str(seed),
        "--out",
        str(path),
        "--manifest",
        str(path.with_suffix(".manifest.json")),
    ]
    wall, code, usage, tail = measure(argv, os.devnull, 3600)
    if code != 0:
        raise SystemExit(f"generator failed (exit {code}): {tail}")
    rate = int(lines / wall)
    params_path.write_text(
        json.dumps(
            {**want, "wall_s": round(wall, 2), "lines_per_s": rate, "max_rss_kib": int(usage.ru_maxrss)}
        )
        + "\n",  # type: ignore[attr-defined]
        encoding="utf-8",
    )
    return path, f"generated in {wall:.1f} s ({rate:,} lines/s)"


def warm(path: Path) -> None:
    """Read the file once so every tool starts with it in the page cache (fair comparison)."""
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
                break
    except OSError:
        pass
    venv_py = REPO / ".venv" / "bin" / "python"
    return {
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu,
        "nproc": str(len(os.sched_getaffinity(0))),
        "memory": mem,
        "python (bench)": platform.python_version(),
        "python (mailwarden venv)": _version(
            [str(venv_py), "-c", "import platform; print(platform.python_version())"]
        )
        if venv_py.exists()
        else "no .venv",
        "perl": _version(["perl", "-e", "print substr($^V, 1)"]),
        "pflogsumm": _version(["pflogsumm", "--version"]).removeprefix("pflogsumm ")
        if shutil.which("pflogsumm")
        else "not installed",
    }


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(path: Path, lines: int, note: str, runs: list[Run]) -> None:
    size = path.stat().st_size / 1e6
    print(f"\nfile: {path}  {lines:,} lines, {size:.1f} MB, {note}")
    print(f"  {'tool':<34} {'wall s':>8} {'lines/s':>11} {'user s':>8} {'sys s':>7} {'max RSS MiB':>12}")
    for r in runs:
        label = {
            "triage": "mailwarden triage --format json",
            "pflogsumm": "pflogsumm",
            "events": "mailwarden events",
        }[r.tool]
        if r.error:
            prefix = "pflogsumm failed" if r.tool == "pflogsumm" else "mailwarden not runnable"
            print(f"  {label:<34} {prefix}: {r.error}")
            continue
        rss = r.max_rss_kib / 1024 if r.max_rss_kib is not None else None
        print(
            f"  {label:<34} {_fmt(r.wall_s, '8.2f')} {_fmt(r.lines_per_s, '11,.0f')} "
            f"{_fmt(r.user_s, '8.2f')} {_fmt(r.sys_s, '7.2f')} {_fmt(rss, '12.1f')}"
        )
    by = {r.tool: r for r in runs if not r.error}
    if "triage" in by and "pflogsumm" in by:
        ratio = by["pflogsumm"].wall_s / by["triage"].wall_s  # type: ignore[operator]
        verdict = "meets" if ratio >= 5 else "MISSES"
        print(f"  triage vs pflogsumm: {ratio:.1f}x faster (wall); {verdict} the >= 5x target")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--also", type=int, help="a second, longer file to compare peak memory")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=BENCH / "out",
        help="where generated logs are cached (default: bench/out, git-ignored)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; best wall is kept")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--regenerate", action="store_true", help="ignore cached logs")
    ap.add_argument("--json", type=Path, help="also write all figures here")
    args = ap.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tools: {', '.join(sorted(unknown))}")
    args.workdir.mkdir(parents=True, exist_ok=True)

    info = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    mw = mailwarden_command()
    if mw is None:
        print("mailwarden not runnable: no .venv/bin/mailwarden, .venv/bin/python or mailwarden on PATH")
    else:
        print(f"mailwarden command: {' '.join(mw)}")

    sizes = [args.lines] + ([args.also] if args.also else [])
    opts = {"workdir": args.workdir, "repeat": args.repeat, "timeout": args.timeout}
    results: dict[int, list[Run]] = {}
    files: dict[int, Path] = {}
    for n in sizes:
        path, note = ensure_log(n, args.seed, args.workdir, args.regenerate)
        files[n] = path
        warm(path)
        runs: list[Run] = []
        for tool in tools:
            if tool == "pflogsumm":
                exe = shutil.which("pflogsumm")
                if exe is None:
                    runs.append(Run(tool, [], n, error="pflogsumm not installed"))
                    continue
                runs.append(run_tool(tool, [exe, str(path)], n, check_json=False, **opts))
            elif mw is None:
                runs.append(Run(tool, [], n, error="command not found"))
            elif tool == "triage":
                runs.append(
                    run_tool(tool, [*mw, "triage", str(path), "--format", "json"], n, check_json=True, **opts)
                )
            else:
                runs.append(run_tool(tool, [*mw, "events", str(path)], n, check_json=False, **opts))
        results[n] = runs
        print_table(path, n, note, runs)

    if args.also:
        print("\npeak RSS by log length (flat = memory does not grow with the log):")
        for tool in tools:
            pair = [next((r for r in results[n] if r.tool == tool), None) for n in sizes]
            if any(r is None or r.error or r.max_rss_kib is None for r in pair):
                print(f"  {tool:<10} n/a")
                continue
            a, b = (r.max_rss_kib / 1024 for r in pair)  # type: ignore[union-attr,operator]
            print(
                f"  {tool:<10} {sizes[0]:>10,} lines: {a:8.1f} MiB   {sizes[1]:>10,} lines: "
                f"{b:8.1f} MiB   ratio {b / a:.2f}"
            )

    if args.json is not None:
        doc = {
            "machine": info,
            "mailwarden": mw,
            "runs": [
                {**asdict(r), "file": str(files[n]), "lines_per_s": r.lines_per_s}
                for n in sizes
                for r in results[n]
            ],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
