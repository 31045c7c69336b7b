import torch

from partwise.ops import (box_area, box_iou, clip_boxes, cxcywh_to_xyxy, xywh_to_xyxy,
                          xyxy_to_cxcywh, xyxy_to_xywh)


def test_box_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0], [1.0, 1.0, 1.0, 1.0]])
    iou = box_iou(a, b)
    torch.testing.assert_close(iou[0], torch.tensor([1 / 7, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(iou[1], torch.zeros(4))  # empty box: IoU 0, never NaN
    torch.testing.assert_close(box_area(a), torch.tensor([4.0, 0.0]))
    torch.testing.assert_close(box_area(torch.tensor([3.0, 3.0, 1.0, 5.0])), torch.tensor(0.0))


def test_conversions_round_trip_and_values():
    boxes = torch.tensor([[1.0, 2.0, 4.0, 8.0]])
    torch.testing.assert_close(xyxy_to_xywh(boxes), torch.tensor([[1.0, 2.0, 3.0, 6.0]]))
    torch.testing.assert_close(xyxy_to_cxcywh(boxes), torch.tensor([[2.5, 5.0, 3.0, 6.0]]))
    torch.testing.assert_close(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes)
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


def test_clip_boxes():
    boxes = torch.tensor([[-5.0, 3.0, 700.0, 500.0], [10.0, -1.0, 20.0, 30.0]])
    torch.testing.assert_close(clip_boxes(boxes, 480, 640),
                               torch.tensor([[0.0, 3.0, 640.0, 480.0], [10.0, 0.0, 20.0, 30.0]]))
