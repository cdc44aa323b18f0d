"""Shared fixtures: where the build under test is (DPDK_NET_BUILD_DIR, default build/ci)."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def build_dir() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("DPDK_NET_BUILD_DIR", ROOT / "build" / "ci"))
    if not (path / "bin").is_dir():
        # A missing build is an error, never a skip: a skipped suite proves nothing.
        pytest.fail(f"no build at {path}: run scripts/test.sh or set DPDK_NET_BUILD_DIR")
    return path


@pytest.fixture(scope="session")
def bin_dir(build_dir) -> pathlib.Path:
    return build_dir / "bin"
