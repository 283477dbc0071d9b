"""Fixtures shared by every app's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploaded and generated files go to a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
