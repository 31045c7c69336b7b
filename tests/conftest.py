"""Test set-up: one thread per process (the machines are shared; more threads are slower here), fixtures paths."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def pytest_addoption(parser) -> None:
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="tests/fuzz: run the long fuzz mode (5000 cases; or PARTWISE_FUZZ_LONG=1)")
