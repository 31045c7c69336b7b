"""PersonDetector: output shapes, peak decoding on hand-built maps, the pixel mapping of detect_people, and the
save/load round trip."""
import math

import numpy as np
import pytest
import torch

from partwise.models import create_model
from partwise.models.checkpoint import load_model, save_model
from partwise.models.person_detector import (PersonDetector, PersonDetectorConfig, decode_heatmap, detect_people)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def blank_outputs(height: int, width: int) -> dict:
    """Outputs with no person anywhere (heatmap probability ~0), offsets at the cell centre (logit 0 -> 0.5)."""
    return {"heatmap": torch.full((1, 1, height, width), -20.0), "offset": torch.zeros(1, 2, height, width),
            "size": torch.zeros(1, 2, height, width)}


def put_person(out: dict, y: int, x: int, prob: float, w_cells: float, h_cells: float) -> None:
    out["heatmap"][0, 0, y, x] = logit(prob)
    out["size"][0, 0, y, x] = math.log(w_cells)
    out["size"][0, 1, y, x] = math.log(h_cells)


def test_output_shapes_follow_the_stride():
    torch.manual_seed(0)
    for stride, stages in ((4, 3), (8, 3), (16, 4)):
        model = PersonDetector(PersonDetectorConfig(width=8, num_stages=stages, neck_channels=8, head_channels=8,
                                                    stride=stride)).eval()
        out = model(torch.randn(2, 3, 64, 96))
        assert out["heatmap"].shape == (2, 1, 64 // stride, 96 // stride)
        assert out["offset"].shape == out["size"].shape == (2, 2, 64 // stride, 96 // stride)
    # sizes not divisible by the coarsest stride still merge (the top-down path upsamples to the exact size)
    out = PersonDetector(PersonDetectorConfig(width=8)).eval()(torch.randn(1, 3, 50, 70))
    assert out["heatmap"].shape == (1, 1, 13, 18)


def test_decode_hand_built_heatmap():
    out = blank_outputs(16, 20)
    put_person(out, 3, 5, 0.9, 4, 8)  # centre (5.5, 3.5) cells -> (22, 14) px at stride 4, 16 x 32 px
    out["heatmap"][0, 0, 3, 6] = logit(0.8)  # a neighbour of the peak: not a local maximum
    put_person(out, 10, 15, 0.6, 2, 3)
    out["offset"][0, 0, 10, 15] = logit(0.25)  # centre x = 15.25 cells
    put_person(out, 5, 5, 0.7, 4, 8)  # a separate peak two cells lower (IoU 0.6 with the first): removed by NMS
    put_person(out, 12, 2, 0.2, 2, 2)  # below the score threshold
    (det,) = decode_heatmap(out, stride=4, score_threshold=0.3, nms_iou=0.5, max_people=10)
    expected = torch.tensor([[22 - 8, 14 - 16, 22 + 8, 14 + 16, 0.9],
                             [61 - 4, 42 - 6, 61 + 4, 42 + 6, 0.6]])
    torch.testing.assert_close(det, expected, rtol=0, atol=1e-4)
    # without NMS (threshold 1) the second peak of the first person survives, ranked between the two
    (det,) = decode_heatmap(out, stride=4, score_threshold=0.3, nms_iou=1.0, max_people=10)
    torch.testing.assert_close(det[:, 4], torch.tensor([0.9, 0.7, 0.6]), rtol=0, atol=1e-5)
    (det,) = decode_heatmap(out, stride=4, score_threshold=0.3, nms_iou=0.5, max_people=1)
    assert det.shape == (1, 5) and float(det[0, 4]) == pytest.approx(0.9)
    (det,) = decode_heatmap(blank_outputs(4, 4), stride=4)
    assert det.shape == (0, 5)


def test_detect_people_maps_boxes_to_frame_pixels_and_clips_them():
    model = PersonDetector(PersonDetectorConfig(width=8, test_short_side=120, mean=(100, 100, 100),
                                                std=(50, 50, 50))).eval()
    seen = {}

    def fake_forward(images):
        seen["images"] = images
        out = blank_outputs(30, 40)  # a 120 x 160 input at stride 4
        put_person(out, 10, 20, 0.95, 5, 10)  # (82, 42) px, 20 x 40 -> frame (144, 44, 184, 124)
        put_person(out, 28, 39, 0.5, 4, 4)  # (158, 114) px, 16 x 16 -> crosses the frame's corner
        return {k: v.expand(len(images), *v.shape[1:]) for k, v in out.items()}

    model.forward = fake_forward
    frames = np.full((2, 240, 320, 3), 200, np.uint8)
    result = detect_people(model, frames, score_threshold=0.3)
    assert seen["images"].shape == (2, 3, 120, 160)
    torch.testing.assert_close(seen["images"], torch.full((2, 3, 120, 160), 2.0))  # (200 - 100) / 50
    assert len(result) == 2
    for det in result:
        assert det.dtype == np.float32 and det.shape == (2, 5)
        np.testing.assert_allclose(det[0], [144, 44, 184, 124, 0.95], atol=1e-3)
        np.testing.assert_allclose(det[1], [300, 212, 320, 240, 0.5], atol=1e-3)  # (300, 212, 332, 244) clipped


def test_detect_people_rejects_bad_frames():
    model = PersonDetector(PersonDetectorConfig(width=8)).eval()
    with pytest.raises(ValueError, match="uint8"):
        detect_people(model, np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        detect_people(model, np.zeros((32, 32, 3), np.uint8))


def test_config_round_trip_and_errors():
    cfg = PersonDetectorConfig(width=12, stride=8, mean=[1, 2, 3], std=[4, 5, 6], test_short_side=96)
    assert PersonDetectorConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["mean"] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="stride"):
        PersonDetectorConfig(stride=32, num_stages=3)
    with pytest.raises(ValueError, match="mean and std"):
        PersonDetectorConfig(std=(1, 0, 1))


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = create_model("person_detector", width=8, neck_channels=16, head_channels=16, test_short_side=64)
    model.train()
    model(torch.randn(4, 3, 64, 80))  # move the BatchNorm statistics away from their initial values
    model.eval()
    save_model(model, tmp_path / "det.pt")
    loaded = load_model(tmp_path / "det.pt")
    assert isinstance(loaded, PersonDetector) and loaded.cfg == model.cfg and not loaded.training
    frames = np.random.default_rng(0).integers(0, 256, (3, 96, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        images = model.normalize(torch.from_numpy(frames).permute(0, 3, 1, 2).float())
        a, b = model(images), loaded(images)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    first = detect_people(model, frames, score_threshold=0.0, max_people=5)
    second = detect_people(loaded, frames, score_threshold=0.0, max_people=5)
    for x, y in zip(first, second):
        assert x.shape == (5, 5)
        assert np.all(np.diff(x[:, 4]) <= 0)
        np.testing.assert_array_equal(x, y)
