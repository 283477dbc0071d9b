"""Run the benchmarks: every ``bench/*.py`` module with a ``main(argv) -> int``, or those named.

    .venv/bin/python bench/run.py                      # all of them
    .venv/bin/python bench/run.py import_members       # one
    .venv/bin/python bench/run.py import_members -- --rows 1000000   # with its options

Each benchmark runs in a process of its own, so that one's peak memory, Django setup or
database never colours another's figures. Exits non-zero when any benchmark fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# Loads one module and calls its main(argv); a module need not be runnable as a script.
RUNNER = (
    "import runpy, sys; "
    "module = runpy.run_path(sys.argv[1], run_name='bench'); "
    "sys.exit(module['main'](sys.argv[2:]))"
)


def benchmark_names() -> list[str]:
    return sorted(
        path.stem
        for path in BENCH_DIR.glob("*.py")
        if path.name != Path(__file__).name
        and not path.name.startswith("_")
        and "def main(" in path.read_text(encoding="utf-8")
    )


def main(argv: list[str]) -> int:
    names, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    available = benchmark_names()
    unknown = [name for name in names if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    failures = []
    for name in names or available:
        print(f"=== {name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(  # noqa: S603 - our own interpreter and files
            [sys.executable, "-c", RUNNER, str(BENCH_DIR / f"{name}.py"), *extra],
            cwd=BENCH_DIR.parent,
            check=False,
        )
        print(f"=== {name}: exit {result.returncode} after {time.perf_counter() - started:.1f} s")
        if result.returncode:
            failures.append(name)
    if failures:
        print(f"failed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
