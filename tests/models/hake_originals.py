"""The forward fixtures of HAKE-Action-Torch's own networks (``tests/fixtures/hake_originals``, see its README).

A fixture holds the original's state-dict layout (every key in its order, shape and dtype), the small tensors
themselves, the recipe of the large ones, the inputs and the original's outputs. The large tensors (the ResNet-50
and ViT-B/16 weights, too big to ship) are uniform random values regenerated here from numpy's legacy
``RandomState`` (a stream numpy keeps fixed), seeded with the CRC-32 of the key; a SHA-256 of each regenerated
tensor is checked against the one recorded when the original ran, so a changed generator fails loudly instead of
looking like a model fault. Keys that the original registers twice (the same module under two names) share one
tensor, as in the original's ``state_dict()``.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "hake_originals"


def uniform(key: str, shape, bound: float) -> np.ndarray:
    """float32 U(-bound, bound) of ``shape`` from ``RandomState(crc32(key))``."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = np.random.RandomState(zlib.crc32(key.encode())).random_sample(n)
    return ((2.0 * u - 1.0) * bound).astype(np.float32).reshape(shape)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()[:16]


def load(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays) of fixture ``name`` (``activity2vec``, ``tin``, ``clip_activity2vec``)."""
    manifest = json.loads((FIXTURE_DIR / f"{name}.json").read_text())
    with np.load(FIXTURE_DIR / f"{name}.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return manifest, arrays


def generated(spec: list) -> np.ndarray:
    """A ``["gen", bound, sha256-prefix, key]`` tensor (the language matrix), checked."""
    _, bound, digest, key = spec
    return _checked(key, uniform(key, (93, 1536), bound), digest)


def _checked(key: str, array: np.ndarray, digest: str) -> np.ndarray:
    if _digest(array) != digest:
        raise AssertionError(f"{key}: the regenerated tensor differs from the one the original ran with "
                             "(numpy's RandomState stream changed?): the fixture, not the model, is at fault")
    return array


def state_dict(manifest: dict, arrays: dict[str, np.ndarray]) -> "OrderedDict[str, torch.Tensor]":
    """The original's ``state_dict()``: every key in its order; aliases share their canonical key's tensor."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape, dtype, how in manifest["state_dict"]:
        if how == "stored":
            tensor = torch.from_numpy(arrays["w/" + key].copy())
        elif how[0] == "alias":
            tensor = out[how[1]]
        else:
            tensor = torch.from_numpy(_checked(key, uniform(key, tuple(shape), how[1]), how[2]))
        assert list(tensor.shape) == shape and str(tensor.dtype) == f"torch.{dtype}", key
        out[key] = tensor
    return out


def assert_close(name: str, actual: torch.Tensor, expected: np.ndarray, tol: float = 1e-4) -> float:
    """|actual - expected| <= tol * max(1, |expected|) everywhere; returns the largest scaled error."""
    actual = actual.detach().double().numpy()
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    err = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    worst = float(err.max())
    assert worst <= tol, f"{name}: max scaled error {worst:.3g} > {tol}"
    return worst


def scaled_error(actual: torch.Tensor, expected: np.ndarray) -> float:
    actual = actual.detach().double().numpy()
    return float((np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))).max())
