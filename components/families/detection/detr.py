"""A small DETR-style set-prediction detector (Carion et al., 2020), scaled for 64x64 scenes on CPU.

CNN backbone -> 1x1 projection -> transformer encoder over the feature grid (+ 2-D sine positions)
-> transformer decoder with ``num_queries`` learned object queries -> per query a class (with
"no object") and a box (normalised cx, cy, w, h through a sigmoid). Training matches queries to
ground-truth boxes one-to-one (Hungarian matching, :func:`hungarian_match`) and applies the set loss
to the matched pairs; unmatched queries learn "no object". No hand-made anchors at the output, no NMS.

``two_stage=True`` (the default) adds the query selection of two-stage DETRs (Deformable DETR,
DINO's "mixed" queries): every encoder token also predicts a class and a box around its cell and gets
the set loss (``*_enc`` losses); the ``num_queries`` best tokens' boxes become the decoder's reference
boxes (query position = MLP of their sine embedding; query content = the learned query embeddings),
and each decoder layer refines its reference box. Plain DETR (``two_stage=False``: learned positional
queries, boxes predicted from scratch) trains the same way but learns far too slowly for a 3-minute
CPU budget: on the 64x64 scenes its class loss barely moved in 5 epochs (val AP50 0.02), where the
two-stage variant reaches AP50 ~0.75 in the same time.

Label convention (torchvision's): ``num_classes`` counts the background, labels are 1..num_classes-1.
DETR's "no object" class *is* the background index 0, so the class head has ``num_classes`` logits
(C real classes + 1). The interface is torchvision's detection interface: ``model(images, targets)``
returns a dict of weighted losses in ``train()`` mode and a list of ``{"boxes", "scores", "labels"}``
in ``eval()`` mode (one detection per query, scored by its best *real* class, see ``postprocess``).

Layers are pre-norm (LayerNorm before attention/FFN), which trains stably at the higher learning
rates a short CPU budget needs; positions are added to queries and keys in every layer as in DETR.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torchvision.ops import box_convert, clip_boxes_to_image, generalized_box_iou

from components.nn.blocks import conv_bn_relu


def sine_embed(coords: Tensor, d_model: int, temperature: float = 10000.0) -> Tensor:
    """DETR's sine embedding of coordinates in [0, 1]: (..., k) -> (..., d_model), d_model / k features each.

    Each coordinate gets interleaved sin/cos of coord * 2*pi / temperature**(2i / (d_model / k)).
    """
    k = coords.shape[-1]
    if d_model % (2 * k):
        raise ValueError(f"d_model must be divisible by {2 * k}, got {d_model}")
    per_coord = d_model // k
    dim_t = temperature ** (2 * (torch.arange(per_coord, device=coords.device) // 2) / per_coord)
    angles = coords[..., None] * 2 * math.pi / dim_t  # (..., k, per_coord)
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-3)


def grid_centres(height: int, width: int) -> Tensor:
    """Normalised (cx, cy) of every cell of a height x width grid, row-major: (height * width, 2)."""
    y, x = torch.meshgrid((torch.arange(height) + 0.5) / height, (torch.arange(width) + 0.5) / width, indexing="ij")
    return torch.stack((x, y), dim=-1).flatten(0, 1)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


@torch.no_grad()
def match_costs(
    outputs: dict[str, Tensor],
    targets: list[dict[str, Tensor]],
    cost_class: float = 1.0,
    cost_bbox: float = 5.0,
    cost_giou: float = 2.0,
) -> list[Tensor]:
    """Per image, the (num_queries, num_targets) matching cost on the CPU.

    cost = cost_class * (-p(target class)) + cost_bbox * L1(cxcywh) + cost_giou * (-GIoU).
    ``outputs``: ``logits`` (N, Q, num_classes) and ``boxes`` (N, Q, 4) normalised cxcywh;
    ``targets``: per image ``labels`` (K,) and ``boxes`` (K, 4) normalised cxcywh.
    """
    n, q = outputs["logits"].shape[:2]
    prob = outputs["logits"].flatten(0, 1).softmax(-1)
    boxes = outputs["boxes"].flatten(0, 1)
    tgt_labels = torch.cat([t["labels"] for t in targets])
    tgt_boxes = torch.cat([t["boxes"] for t in targets]).to(boxes.dtype)
    xyxy = box_convert(boxes, "cxcywh", "xyxy"), box_convert(tgt_boxes, "cxcywh", "xyxy")
    cost = (
        -cost_class * prob[:, tgt_labels]
        + cost_bbox * torch.cdist(boxes, tgt_boxes, p=1)
        - cost_giou * generalized_box_iou(*xyxy)
    )
    chunks = cost.view(n, q, -1).float().cpu().split([len(t["labels"]) for t in targets], dim=-1)
    return [chunk[i] for i, chunk in enumerate(chunks)]


def hungarian_match(
    outputs: dict[str, Tensor],
    targets: list[dict[str, Tensor]],
    cost_class: float = 1.0,
    cost_bbox: float = 5.0,
    cost_giou: float = 2.0,
) -> list[tuple[Tensor, Tensor]]:
    """Optimal one-to-one query/target assignment per image: [(pred_idx, tgt_idx)], each int64 (min(Q, K),).

    Minimises the total :func:`match_costs` with ``scipy.optimize.linear_sum_assignment``; an image
    without targets gets two empty index tensors (all its queries learn "no object").
    """
    indices = []
    for cost in match_costs(outputs, targets, cost_class, cost_bbox, cost_giou):
        rows, cols = linear_sum_assignment(cost.numpy())
        indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
    return indices


class _Layer(nn.Module):
    """Pre-norm transformer layer: self-attention, optional cross-attention to ``memory``, FFN."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True) if cross else None
        self.ffn = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, d_model),
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3 if cross else 2))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, memory: Tensor | None = None, memory_pos: Tensor | None = None) -> Tensor:
        h = self.norms[0](x)
        x = x + self.dropout(self.self_attn(h + pos, h + pos, h, need_weights=False)[0])
        if self.cross_attn is not None:
            h = self.norms[1](x)
            x = x + self.dropout(self.cross_attn(h + pos, memory + memory_pos, memory, need_weights=False)[0])
        return x + self.dropout(self.ffn(self.norms[-1](x)))


def _mlp(d_model: int, out: int, layers: int = 3) -> nn.Sequential:
    """``layers`` linear layers of width d_model with ReLU between them, ending in ``out`` features."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(d_model, out if i == layers - 1 else d_model))
        if i < layers - 1:
            mods.append(nn.ReLU(inplace=True))
    return nn.Sequential(*mods)


class DETRDetector(nn.Module):
    """DETR with a small conv-BN-ReLU backbone; torchvision's detection interface (see the module docstring)."""

    def __init__(
        self,
        num_classes: int,  # including the background, which doubles as DETR's "no object" (index 0)
        in_channels: int = 1,  # image channels
        image_size: int = 64,  # image side it is built for (checks num_queries fits the grid); other sizes also run
        base_channels: int = 16,  # backbone width at stride 2 (x2 per stage)
        num_stages: int = 3,  # stride-2 backbone stages: feature grid = image_size / 2**num_stages (8x8)
        d_model: int = 64,  # transformer width (divisible by 8 and by nhead); 128 learned slower in 3 min
        nhead: int = 4,  # attention heads
        num_encoder_layers: int = 2,  # 0 = decoder directly on the projected CNN features
        num_decoder_layers: int = 3,  # each one is supervised when aux_loss is on
        dim_feedforward: int = 128,  # FFN hidden width
        num_queries: int = 12,  # learned object queries = max detections per image (scenes hold <= 4)
        dropout: float = 0.0,  # transformer dropout (DETR uses 0.1 on long schedules)
        two_stage: bool = True,  # queries start at the top-scoring encoder tokens' boxes (see below)
        anchor_size: float = 0.3,  # two_stage: initial normalised w/h of every encoder token's box
        cost_class: float = 1.0,  # matching weight of -p(class)
        cost_bbox: float = 5.0,  # matching weight of L1 on normalised cxcywh
        cost_giou: float = 2.0,  # matching weight of -GIoU
        loss_ce: float = 1.0,  # loss weight of the classification cross-entropy
        loss_bbox: float = 5.0,  # loss weight of L1 on normalised cxcywh
        loss_giou: float = 2.0,  # loss weight of 1 - GIoU
        eos_coef: float = 0.1,  # cross-entropy weight of the "no object" class (the others weigh 1)
        aux_loss: bool = True,  # also apply the set loss to every intermediate decoder layer
        detections_per_img: int | None = None,  # eval: keep the top-k queries by score; None = all queries
    ) -> None:
        super().__init__()
        tokens = math.ceil(image_size / 2**num_stages) ** 2
        if two_stage and num_queries > tokens:
            raise ValueError(f"two_stage needs num_queries <= {tokens} encoder tokens, got {num_queries}")
        self.num_classes, self.d_model, self.two_stage, self.aux_loss = num_classes, d_model, two_stage, aux_loss
        self.anchor_size, self.num_queries = anchor_size, num_queries
        self.cost = {"cost_class": cost_class, "cost_bbox": cost_bbox, "cost_giou": cost_giou}
        self.weights = {"loss_ce": loss_ce, "loss_bbox": loss_bbox, "loss_giou": loss_giou}
        self.detections_per_img = detections_per_img or num_queries
        widths = [base_channels * 2**s for s in range(num_stages)]
        self.backbone = nn.Sequential(
            *(
                nn.Sequential(conv_bn_relu(in_channels if s == 0 else widths[s - 1], w, stride=2), conv_bn_relu(w, w))
                for s, w in enumerate(widths)
            )
        )
        self.proj = nn.Conv2d(widths[-1], d_model, kernel_size=1)
        self.encoder = nn.ModuleList(
            _Layer(d_model, nhead, dim_feedforward, dropout, cross=False) for _ in range(num_encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model) if num_encoder_layers else nn.Identity()
        self.decoder = nn.ModuleList(
            _Layer(d_model, nhead, dim_feedforward, dropout, cross=True) for _ in range(num_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.queries = nn.Embedding(num_queries, d_model)  # positional (plain DETR) or content (two_stage) queries
        self.class_head = nn.Linear(d_model, num_classes)
        self.box_head = _mlp(d_model, 4)
        if two_stage:  # every encoder token proposes a box around its cell; the best become the queries' anchors
            self.enc_class_head = nn.Linear(d_model, num_classes)
            self.enc_box_head = _mlp(d_model, 4)
            self.anchor_pos = _mlp(d_model, d_model, layers=2)  # sine embedding of an anchor box -> query position
        class_weight = torch.ones(num_classes)
        class_weight[0] = eos_coef
        self.register_buffer("class_weight", class_weight, persistent=False)

    def forward(
        self, images: Tensor | list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        x = images if isinstance(images, Tensor) else torch.stack(list(images))
        size = x.shape[-2:]
        features = self.proj(self.backbone(x))  # (N, d_model, h, w)
        memory = features.flatten(2).transpose(1, 2)  # (N, h*w, d_model)
        centres = grid_centres(*features.shape[-2:]).to(memory)
        pos = sine_embed(centres, self.d_model)
        for layer in self.encoder:
            memory = layer(memory, pos)
        memory = self.encoder_norm(memory)
        queries = self.queries.weight.unsqueeze(0).expand(len(x), -1, -1)
        outputs, ref = [], None
        if self.two_stage:  # encoder tokens predict boxes relative to an anchor at their cell
            anchors = torch.cat((centres, torch.full_like(centres, self.anchor_size)), dim=-1)
            enc = {
                "logits": self.enc_class_head(memory),
                "boxes": (self.enc_box_head(memory) + inverse_sigmoid(anchors)).sigmoid(),
            }
            top = enc["logits"][..., 1:].max(-1).values.topk(self.num_queries, dim=1).indices
            ref = enc["boxes"].gather(1, top.unsqueeze(-1).expand(-1, -1, 4)).detach()
            hidden = queries
        else:
            hidden, query_pos = torch.zeros_like(queries), queries
        for layer in self.decoder:
            if ref is not None:
                query_pos = self.anchor_pos(sine_embed(ref, self.d_model))
            hidden = layer(hidden, query_pos, memory, pos)
            h = self.decoder_norm(hidden)
            delta = self.box_head(h)
            boxes = delta.sigmoid() if ref is None else (delta + inverse_sigmoid(ref)).sigmoid()
            outputs.append({"logits": self.class_head(h), "boxes": boxes})
            ref = None if ref is None else boxes.detach()  # iterative refinement: the next layer's anchors
        if not self.training:
            return self.postprocess(outputs[-1], size)
        if targets is None:
            raise ValueError("targets are required in train() mode")
        scale = torch.tensor([size[1], size[0], size[1], size[0]], dtype=x.dtype, device=x.device)
        normalised = [
            {"labels": t["labels"].long(), "boxes": box_convert(t["boxes"].to(x.dtype) / scale, "xyxy", "cxcywh")}
            for t in targets
        ]
        losses = self.set_loss(outputs[-1], normalised)
        extra = dict(enumerate(outputs[:-1])) if self.aux_loss else {}
        if self.two_stage:
            extra["enc"] = enc
        for name, out in extra.items():
            losses.update({f"{k}_{name}": v for k, v in self.set_loss(out, normalised).items()})
        return losses

    def set_loss(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Weighted DETR loss of one decoder layer's outputs against normalised-cxcywh targets."""
        indices = hungarian_match(outputs, targets, **self.cost)
        logits, boxes = outputs["logits"], outputs["boxes"]
        device = logits.device
        batch_idx = torch.cat([torch.full_like(p, i) for i, (p, _) in enumerate(indices)]).to(device)
        pred_idx = torch.cat([p for p, _ in indices]).to(device)
        tgt_idx = [j.to(device) for _, j in indices]
        target_classes = torch.zeros(logits.shape[:2], dtype=torch.int64, device=device)  # 0 = no object
        target_classes[batch_idx, pred_idx] = torch.cat([t["labels"][j] for t, j in zip(targets, tgt_idx, strict=True)])
        ce = F.cross_entropy(logits.transpose(1, 2), target_classes, weight=self.class_weight)
        src = boxes[batch_idx, pred_idx]
        tgt = torch.cat([t["boxes"][j] for t, j in zip(targets, tgt_idx, strict=True)])
        num_boxes = max(len(tgt), 1)
        l1 = F.l1_loss(src, tgt, reduction="sum") / num_boxes
        giou = generalized_box_iou(box_convert(src, "cxcywh", "xyxy"), box_convert(tgt, "cxcywh", "xyxy"))
        giou_loss = (1 - torch.diagonal(giou)).sum() / num_boxes
        w = self.weights
        return {"loss_ce": w["loss_ce"] * ce, "loss_bbox": w["loss_bbox"] * l1, "loss_giou": w["loss_giou"] * giou_loss}

    def postprocess(self, outputs: dict[str, Tensor], size: torch.Size) -> list[dict[str, Tensor]]:
        """One detection per query: its best real class (never "no object") and that class's probability.

        Keeping every query (not only those whose argmax is a real class) scores best under COCO AP,
        which is ranking-based; low-confidence queries only fill the tail of the precision-recall curve.
        """
        prob = outputs["logits"].softmax(-1)[..., 1:]
        scores, labels = prob.max(-1)
        scale = torch.tensor([size[1], size[0], size[1], size[0]], dtype=prob.dtype, device=prob.device)
        boxes = clip_boxes_to_image(box_convert(outputs["boxes"], "cxcywh", "xyxy") * scale, tuple(size))
        keep = scores.topk(min(self.detections_per_img, scores.shape[1]), dim=1).indices
        return [
            {"boxes": b[k], "scores": s[k], "labels": lab[k] + 1}
            for b, s, lab, k in zip(boxes, scores, labels, keep, strict=True)
        ]
