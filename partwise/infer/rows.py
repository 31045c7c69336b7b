"""``partwise run``'s last per-keyframe stage: the output rows (one dict per person, the columns of
:data:`partwise.infer.outputs.RESULT_SCHEMA` before normalization) from the stages' hand-offs.

Part states (``part_boxes[].state``, the Kinetics-TPS JSON) are the kinematic ones, overridden by a model whose
vocabulary is a Kinetics-TPS state list (:data:`partwise.infer.run_models.TPS_STATE_VOCABS`); PaSta names go to
the PaSta columns. See :mod:`partwise.infer.pipeline` for the whole run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from partwise.infer.inputs import InputItem, Keyframe
from partwise.infer.people import KeyframePeople
from partwise.infer.poses import KeyframePoses
from partwise.infer.run_models import TPS_STATE_VOCABS, LoadedModel, top_states, tps_state_overrides

if TYPE_CHECKING:
    from partwise.infer.pipeline import RunOptions


@dataclass
class VideoContext:
    """What every row of one input shares: the input, its frame size, the video class (``--video-model``) and
    the vocabularies of the model's outputs."""

    item: InputItem
    width: int
    height: int
    video_label: str | None = None
    model: LoadedModel | None = None
    verb_vocab: Any = None  # partwise.vocab's verbs157 for activity2vec models


def keyframe_rows(ctx: VideoContext, kf: Keyframe, people: KeyframePeople, poses: KeyframePoses, ids: np.ndarray,
                  parts: np.ndarray, relations: list[list[dict]], outputs: dict[str, np.ndarray] | None,
                  options: "RunOptions") -> list[dict]:
    """One row per person of keyframe ``kf``: ``ids`` ``(N,)`` track ids, ``parts`` ``(N, 10, 4)`` pixel part
    boxes, ``relations`` the objects each person's parts touch, ``outputs`` the model's (or None)."""
    from partwise import vocab
    from partwise.infer.kinematics import TPS_PARTS

    model, keypoints = ctx.model, poses.keypoints
    rows = []
    for i in range(len(people)):
        states = dict(poses.kinematic[i])  # Kinetics-TPS part states: what the TPS JSON reports
        kinematic_names = [f"{p}: {states[p]}" for p in TPS_PARTS if p in states]
        row: dict[str, Any] = {
            "video_id": ctx.item.video_id, "time_s": kf.time_s, "frame_index": kf.frame_index,
            "width": ctx.width, "height": ctx.height, "box_px": people.boxes[i].tolist(),
            "score": float(people.scores[i]),
            "track_id": int(ids[i]), "keypoints": None if keypoints is None else keypoints[i].tolist(),
            "kinematic": kinematic_names,
            # without a PaSta model the part states are the kinematic ones, in the Kinetics-TPS vocabulary
            "pasta": kinematic_names, "pasta_vocab": "kinetics-tps" if kinematic_names else None,
            "pasta_scores": None, "pasta_probs": None, "actions": [], "action_scores": None,
            "verbs": [], "verb_scores": None, "activity_vector": None, "video_label": ctx.video_label,
            "source": f"{ctx.item.path}:{kf.frame_index}",
        }
        if outputs is not None and "pasta" in outputs:
            p = outputs["pasta"][i]
            top = top_states(p, model.pasta_names, options.topk)
            row["pasta"] = [model.pasta_names[j] for j in top]
            row["pasta_vocab"] = model.pasta_vocab
            row["pasta_scores"] = [float(p[j]) for j in top]
            row["pasta_probs"] = p.astype(np.float32).tolist()
            if model.pasta_vocab in TPS_STATE_VOCABS:
                states.update(tps_state_overrides(p, model.pasta_names, options.state_threshold))
        if outputs is not None and "actions" in outputs:
            a = outputs["actions"][i]
            row["actions"] = [int(j + 1) for j in np.flatnonzero(a >= options.action_threshold)]
            row["action_scores"] = a.astype(np.float32).tolist()
        if outputs is not None and "verbs" in outputs:
            v = outputs["verbs"][i]
            row["verbs"] = [ctx.verb_vocab.names[j] for j in top_states(v, ctx.verb_vocab.names, options.topk)]
            row["verb_scores"] = v.astype(np.float32).tolist()
        if outputs is not None and "features" in outputs:
            row["activity_vector"] = outputs["features"][i].astype(np.float32).tolist()
        row["part_boxes"] = [{"part": name, "box_px": parts[i, j].tolist(), "state": states.get(name)}
                             for j, name in enumerate(vocab.BODY_PARTS)]
        row["objects"] = relations[i]
        rows.append(row)
    return rows
