"""The project fuzz suite (issue 13): mutated synthetic inputs through every reader and command, in-process.

Default: about 550 cases (seed 0). ``pytest --fuzz-long`` (or ``PARTWISE_FUZZ_LONG=1``) runs 5000 more cases over
other seeds; ``PARTWISE_FUZZ_SEED`` / ``PARTWISE_FUZZ_CASES`` override the seed and the number of file cases.
The engine is :mod:`tests.fuzz.fuzzer` (``python -m tests.fuzz.fuzzer SEED N`` prints every failure).
"""
import os
from pathlib import Path

import pytest

from tests.fuzz import fuzzer


def _long(config) -> bool:
    return bool(config.getoption("--fuzz-long", default=False)) or os.environ.get("PARTWISE_FUZZ_LONG") == "1"


def test_fuzz(tmp_path: Path, request) -> None:
    seed = int(os.environ.get("PARTWISE_FUZZ_SEED", "0"))
    n = int(os.environ.get("PARTWISE_FUZZ_CASES", "5000" if _long(request.config) else "500"))
    synth = fuzzer.make_dataset(tmp_path, seed)
    cases = fuzzer.build_cases(synth, seed, n)
    work = tmp_path / "cases"
    work.mkdir()
    results = fuzzer.run_all(cases, work, tmp_path)
    line = fuzzer.summary(results)
    print(line)
    failed = [r for r in results if r.failures]
    if failed:
        pytest.fail(line + "\n" + "\n".join(fuzzer.describe(r)[:400] for r in failed[:10]), pytrace=False)
