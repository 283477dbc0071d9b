"""Fixtures of the members app's tests."""

from __future__ import annotations

import pytest

from members import tasks


@pytest.fixture
def queued(monkeypatch) -> dict[str, list[int]]:
    """Import task messages sent (instead of reaching the broker), by task."""
    sent: dict[str, list[int]] = {"validate": [], "run": []}
    monkeypatch.setattr(tasks.validate_import_job, "delay", sent["validate"].append)
    monkeypatch.setattr(tasks.run_import_job, "delay", sent["run"].append)
    return sent
