"""YOLO-style grid detectors: v1 (Redmon et al., 2016) and a v2-style anchor variant (Redmon & Farhadi, 2017).

The image is divided into an S x S grid and the cell that holds a ground-truth box's centre is
responsible for it. Each cell has A prediction slots, each predicting (x, y, w, h, confidence):
x, y = the centre's offset inside the cell in [0, 1]; w, h = the size relative to the image.

- ``variant="v1"``: A = ``boxes_per_cell`` boxes sharing one class distribution per cell. Among a
  cell's B boxes, the one with the highest IoU with the ground truth is responsible for it.
  Outputs go through a sigmoid (x, y, sqrt(w), sqrt(h), confidence) and a softmax (classes) - the
  paper's outputs are linear; the squashing keeps training stable. Loss as in the paper, all
  sum-squared errors: lambda_coord on (x, y, sqrt w, sqrt h), confidence -> IoU on responsible
  boxes, lambda_noobj * confidence^2 on all others, class probabilities in cells with an object.
- ``variant="v2"``: one slot per anchor (w, h in pixels), each with its own class scores:
  x = sigmoid(tx), w = anchor_w * exp(tw). The ground truth goes to the anchor of its cell whose
  shape matches it best (IoU of centred boxes). Loss: lambda_coord * MSE on (sigmoid offsets, tw, th
  against log(w / anchor_w)), confidence -> IoU / 0 as in v1, cross-entropy on the class logits of
  responsible anchors (v2 also ignores non-responsible predictions with IoU > 0.6; this does not).

Grid tensors - the shared format of :func:`encode_targets` and :func:`decode_grid` - are
``[S, S, A, 5 + C]`` (dim 0 = row / y cell, dim 1 = column / x cell) holding
``(x, y, w, h, conf, p_1 .. p_C)`` with C = num_classes - 1 foreground classes (label l <-> index l - 1;
label 0 is torchvision's background and is never predicted).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import batched_nms

from components.nn.blocks import conv_bn_relu

# k-means (IoU distance) of the embedded 64 px scenes' boxes, in pixels; scaled to other image sizes.
DEFAULT_ANCHORS_64 = ((10.3, 16.1), (13.9, 20.7), (17.9, 25.7))


def encode_targets(
    boxes: Tensor, labels: Tensor, num_classes: int, image_size: int, grid_size: int, anchors: Tensor | None = None
) -> Tensor:
    """Ground truth (boxes [K, 4] xyxy pixels, labels [K] in 1..C) -> grid [S, S, A, 5 + C].

    Without ``anchors`` (v1) A = 1: the cell's object. With ``anchors`` ([A, 2], relative to the image)
    the box goes to the best-matching anchor. Responsible slots get conf 1 and a one-hot class; if two
    boxes land in the same slot one of them wins.
    """
    c, s = num_classes - 1, grid_size
    a = 1 if anchors is None else len(anchors)
    grid = boxes.new_zeros(s, s, a, 5 + c, dtype=torch.float32)
    if boxes.numel() == 0:
        return grid
    boxes = boxes.float()
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 * s / image_size, (boxes[:, 1] + boxes[:, 3]) / 2 * s / image_size
    col, row = cx.floor().clamp(0, s - 1), cy.floor().clamp(0, s - 1)
    w, h = (boxes[:, 2] - boxes[:, 0]) / image_size, (boxes[:, 3] - boxes[:, 1]) / image_size
    if anchors is None:
        slot = torch.zeros_like(col, dtype=torch.long)
    else:
        inter = torch.minimum(w[:, None], anchors[:, 0]) * torch.minimum(h[:, None], anchors[:, 1])
        slot = (inter / ((w * h)[:, None] + anchors.prod(1) - inter)).argmax(1)
    onehot = F.one_hot(labels.long() - 1, c).float()
    values = torch.cat([torch.stack([cx - col, cy - row, w, h, torch.ones_like(w)], 1), onehot], 1)
    grid[row.long(), col.long(), slot] = values
    return grid


def decode_grid(grid: Tensor, image_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Grid [..., S, S, A, 5 + C] -> (boxes [..., S*S*A, 4] xyxy pixels, conf [..., S*S*A], probs [..., S*S*A, C])."""
    s = grid.shape[-4]
    idx = torch.arange(s, dtype=grid.dtype, device=grid.device)
    cell = image_size / s
    cx, cy = (idx.view(1, s, 1) + grid[..., 0]) * cell, (idx.view(s, 1, 1) + grid[..., 1]) * cell
    w, h = grid[..., 2] * image_size, grid[..., 3] * image_size
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    return boxes.flatten(-4, -2), grid[..., 4].flatten(-3), grid[..., 5:].flatten(-4, -2)


def _iou_cell(a: Tensor, b: Tensor, grid_size: int) -> Tensor:
    """IoU of grid-format boxes (x, y in cell units, w, h relative to the image) that share a cell."""
    ax, ay, bx, by = a[..., 0] / grid_size, a[..., 1] / grid_size, b[..., 0] / grid_size, b[..., 1] / grid_size
    iw = torch.minimum(ax + a[..., 2] / 2, bx + b[..., 2] / 2) - torch.maximum(ax - a[..., 2] / 2, bx - b[..., 2] / 2)
    ih = torch.minimum(ay + a[..., 3] / 2, by + b[..., 3] / 2) - torch.maximum(ay - a[..., 3] / 2, by - b[..., 3] / 2)
    inter = iw.clamp(min=0) * ih.clamp(min=0)
    return inter / (a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter).clamp(min=1e-9)


class YOLODetector(nn.Module):
    """Small conv backbone to stride image_size / grid_size + a 1x1 YOLO head; torchvision's detection interface.

    ``model(images, targets)`` in train mode -> ``{"loss_box", "loss_obj", "loss_noobj", "loss_cls"}``
    (sums over the batch divided by its size); in eval mode -> one ``{"boxes", "scores", "labels"}`` per
    image (score = confidence x class probability, per class above ``score_thresh``, class-wise NMS).
    """

    def __init__(
        self,
        num_classes: int,  # including background (torchvision convention); predicts num_classes - 1 classes
        in_channels: int,  # image channels (1 for the grey scenes)
        image_size: int,  # square input side in pixels; image_size / grid_size must be a power of 2
        grid_size: int = 8,  # S: the S x S grid (stride 8 at 64 px)
        boxes_per_cell: int = 2,  # B, v1 only (v2 has one slot per anchor)
        base_channels: int = 16,  # width of the first stage; doubles at each stride-2 stage
        variant: str = "v1",  # "v1" (B boxes + one class distribution per cell, the paper) or "v2" (anchors)
        anchors: list[list[float]] | None = None,  # v2 anchor [w, h] in pixels; None = k-means of the scenes
        lambda_coord: float = 5.0,  # weight of the box-coordinate loss (paper: 5)
        lambda_noobj: float = 0.5,  # weight of the confidence loss of slots without an object (paper: 0.5)
        score_thresh: float = 0.05,  # eval: drop detections scoring below this
        nms_thresh: float = 0.5,  # eval: IoU above which class-wise NMS suppresses the lower-scoring box
        detections_per_img: int = 100,  # eval: keep at most this many detections per image
    ) -> None:
        super().__init__()
        if variant not in ("v1", "v2"):
            raise ValueError(f"variant must be 'v1' or 'v2', got {variant!r}")
        n_down = math.log2(image_size / grid_size) if image_size % grid_size == 0 else -1.0
        if n_down < 0 or not n_down.is_integer():
            raise ValueError(f"image_size / grid_size must be a power of 2, got {image_size} / {grid_size}")
        self.num_classes, self.image_size, self.grid_size, self.variant = num_classes, image_size, grid_size, variant
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.score_thresh, self.nms_thresh, self.detections_per_img = score_thresh, nms_thresh, detections_per_img
        c = num_classes - 1
        if variant == "v2":
            if anchors is None:
                anchors = [[w * image_size / 64, h * image_size / 64] for w, h in DEFAULT_ANCHORS_64]
            self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32) / image_size)
            self.num_slots, out = len(anchors), len(anchors) * (5 + c)
        else:
            self.anchors = None
            self.num_slots, out = boxes_per_cell, boxes_per_cell * 5 + c
        ch = base_channels
        layers: list[nn.Module] = [conv_bn_relu(in_channels, ch)]
        for _ in range(int(n_down)):
            layers += [nn.MaxPool2d(2), conv_bn_relu(ch, 2 * ch), conv_bn_relu(2 * ch, 2 * ch)]
            ch *= 2
        layers.append(conv_bn_relu(ch, ch, dilation=2))  # wider context at the grid resolution
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, out, kernel_size=1)
        with torch.no_grad():  # start with low confidence everywhere (most slots are empty)
            self.head.bias.view(-1)[self._conf_channels()] = -4.0

    def _conf_channels(self) -> list[int]:
        stride = 5 + self.num_classes - 1 if self.variant == "v2" else 5
        return [a * stride + 4 for a in range(self.num_slots)]

    def _predict(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Images -> (grid [N, S, S, A, 5 + C], raw box outputs [N, S, S, A, 4], class logits [N, S, S, A|1, C])."""
        raw = self.head(self.backbone(x)).permute(0, 2, 3, 1)  # N, S, S, out
        n, s, a, c = raw.shape[0], raw.shape[1], self.num_slots, self.num_classes - 1
        if self.variant == "v1":
            box = raw[..., : 5 * a].reshape(n, s, s, a, 5).sigmoid()  # x, y, sqrt w, sqrt h, conf
            logits = raw[..., 5 * a :].unsqueeze(3)
            xywh = torch.cat([box[..., :2], box[..., 2:4] ** 2], -1)
            conf, box_raw = box[..., 4:], box[..., :4]
        else:
            raw = raw.reshape(n, s, s, a, 5 + c)
            logits, box_raw = raw[..., 5:], raw[..., :4]
            wh = self.anchors * raw[..., 2:4].clamp(max=6.0).exp()
            xywh = torch.cat([raw[..., :2].sigmoid(), wh], -1)
            conf = raw[..., 4:5].sigmoid()
        probs = logits.softmax(-1).expand(n, s, s, a, c)
        return torch.cat([xywh, conf, probs], -1), box_raw, logits

    def forward(self, images: list[Tensor] | Tensor, targets: list[dict[str, Tensor]] | None = None):
        x = torch.stack(list(images)) if isinstance(images, list | tuple) else images
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")
        grid, box_raw, logits = self._predict(x)
        if self.training:
            if targets is None:
                raise ValueError("targets are required in train mode")
            return self._loss(grid, box_raw, logits, targets)
        return [self._postprocess(g) for g in grid]

    def _loss(self, grid: Tensor, box_raw: Tensor, logits: Tensor, targets: list[dict[str, Tensor]]) -> dict:
        s = self.grid_size
        t = torch.stack(
            [
                encode_targets(d["boxes"], d["labels"], self.num_classes, self.image_size, s, self.anchors)
                for d in targets
            ]
        ).to(grid.device)
        conf = grid[..., 4]
        if self.variant == "v1":  # responsible = the cell's box with the highest IoU with its object
            obj_cell, tbox = t[..., 0, 4] > 0, t[..., :1, :4]
            iou = _iou_cell(grid[..., :4], tbox, s).detach()
            resp = F.one_hot(iou.argmax(-1), self.num_slots).bool() & obj_cell[..., None]
            tbox = tbox.expand_as(box_raw)
            coord = torch.cat([box_raw[..., :2] - tbox[..., :2], box_raw[..., 2:] - tbox[..., 2:].sqrt()], -1)
            cls = ((logits[..., 0, :].softmax(-1) - t[..., 0, 5:]) ** 2).sum(-1)[obj_cell].sum()
        else:  # responsible = the anchor the encoder assigned
            resp, tbox = t[..., 4] > 0, t[..., :4]
            iou = _iou_cell(grid[..., :4], tbox, s).detach()
            twh = (tbox[..., 2:].clamp(min=1e-9) / self.anchors).log()
            coord = torch.cat([grid[..., :2] - tbox[..., :2], box_raw[..., 2:] - twh], -1)
            cls = F.cross_entropy(logits[resp], t[..., 5:][resp].argmax(-1), reduction="sum")
        n = grid.shape[0]
        return {
            "loss_box": self.lambda_coord * (coord**2).sum(-1)[resp].sum() / n,
            "loss_obj": ((conf - iou) ** 2)[resp].sum() / n,
            "loss_noobj": self.lambda_noobj * (conf**2)[~resp].sum() / n,
            "loss_cls": cls / n,
        }

    @torch.no_grad()
    def _postprocess(self, grid: Tensor) -> dict[str, Tensor]:
        boxes, conf, probs = decode_grid(grid, self.image_size)
        boxes = boxes.clamp(0, self.image_size)
        scores = conf[:, None] * probs  # class-specific confidence, as in the paper
        idx, cls = (scores > self.score_thresh).nonzero(as_tuple=True)
        boxes, scores, labels = boxes[idx], scores[idx, cls], cls + 1
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
