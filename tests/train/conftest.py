"""A tiny synthetic dataset shared by the training tests (4 videos of 5 s at 128x96: 3 train, 1 val)."""
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, SynthConfig(seed=0, videos=4, seconds=5, width=128, height=96, frames=True))
    return root
