"""Shared fixtures: where the reference data lives, and an isolated ruleset cache.

The reference data (../shared: rulesets, payment tables, oracle) is read in place, from
``$DRGKIT_SHARED`` or the ``shared`` folder next to the repository. Tests that need it skip
with a message when it is absent, except on CI (``CI=true``), where its absence fails them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_RULESETS = ["chs_drg_11", "chs_drg_10", "beijing_2022", "suzhou_2023", "wuxi_2022"]
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "rulesets" / "demo"


def shared_dir() -> Path:
    """``$DRGKIT_SHARED`` if set, else the ``shared`` folder next to the repository."""
    env = os.environ.get("DRGKIT_SHARED")
    if env:
        return Path(env)
    return REPO.parent / "shared"


def require_shared() -> Path:
    """The shared folder; skip the test when it is absent (fail on CI)."""
    folder = shared_dir()
    if not (folder / "rulesets").is_dir() or not (folder / "oracle").is_dir():
        message = (
            f"shared reference data not found at {folder}; "
            "set DRGKIT_SHARED to the folder holding rulesets/ and oracle/"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compile rulesets into a cache of this test session, not the user's."""
    if "DRGKIT_CACHE_DIR" not in os.environ:
        os.environ["DRGKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("drgkit-cache"))
