"""The fault-injection report: one result per scenario, saved as a file (pytest-xdist runs
scenarios in several processes) and printed as one table at the end of the test run.

No Django here: the root conftest's terminal summary imports it in pytest's main process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ScenarioResult:
    name: str
    messages: int = 0
    duplicates: int = 0
    losses: int = 0
    recover_seconds: float | None = None
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def format_report(results: list[ScenarioResult]) -> str:
    width = max([len("scenario"), *(len(r.name) for r in results)])
    header = (
        f"{'scenario':<{width}} {'messages':>8} {'dupes':>6} {'losses':>6} {'recover s':>10} "
        f"{'wall s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        recover = "-" if r.recover_seconds is None else f"{r.recover_seconds:.1f}"
        lines.append(
            f"{r.name:<{width}} {r.messages:>8} {r.duplicates:>6} {r.losses:>6} {recover:>10} "
            f"{r.wall_seconds:>7.1f}"
        )
    for r in results:
        lines.append(f"  {r.name}: " + "; ".join(r.notes))
    return "\n".join(lines)


# One file per scenario run (pytest-xdist runs them in several processes); the root
# conftest's terminal summary prints the table from the files of this session.
REPORT_DIR = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "chaos"


def save_result(result: ScenarioResult) -> Path:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    target = REPORT_DIR / f"{result.name}.json"
    target.write_text(json.dumps(asdict(result)))
    return target


def load_results(since: float) -> list[ScenarioResult]:
    """The scenarios whose result was saved at or after ``since`` (a time.time())."""
    if not REPORT_DIR.is_dir():
        return []
    return [
        ScenarioResult(**json.loads(path.read_text()))
        for path in sorted(REPORT_DIR.glob("*.json"))
        if path.stat().st_mtime >= since
    ]
