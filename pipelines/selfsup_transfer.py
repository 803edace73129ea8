"""Stage `selfsup_transfer`: do self-supervised features help a task with few labels?

    python -m pipelines.selfsup_transfer [--params params.yaml]

The course's transfer evaluation: each encoder ``pipeline.selfsup`` lists (models/selfsup/<method>/)
initialises the conv stages of a segmentation network (components/families/selfsup/transfer.py: an
FCN-style decoder over the stages), and the whole network is fine-tuned on ``selfsup.transfer.
label_fraction`` of the training scenes' masks (the scenes shrunk by ``downscale`` to the digits'
scale); the ``scratch`` row trains the same network from seeded random weights. Test mIoU and pixel
accuracy at the masks' resolution, mean and std over ``draws`` seeded label subsets (each the same for
every row). Each row also carries the same encoder's linear-probe accuracies (final layer, 10 labels
per class and all labels, from metrics/details/selfsup_probe/<row>.json; ``scratch``: the untrained encoder's),
so one table has the course's layout. Writes metrics/selfsup_transfer/<row>.json,
figures/selfsup_transfer/ and one MLflow run ``transfer`` in ``selfsup``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from components import analysis
from components.data.schema import read_meta
from components.errors import UserError, exit_on_user_error, run_and_exit
from components.families.segmentation.task import load_split
from components.families.selfsup.encoders import trained_and_untrained
from components.families.selfsup.family import listed_methods
from components.families.selfsup.figures import transfer_figure
from components.families.selfsup.transfer import SegmentationTransfer, evaluate, fine_tune, label_subset
from components.metrics_files import details_path
from components.runtime import resolve

STAGE = "selfsup_transfer"
SCRATCH = "scratch"


PROBE_COLUMNS = ("test/probe_accuracy_few", "test/probe_accuracy")  # the course's table: probe beside transfer


def probe_columns(root: Path, row: str) -> dict[str, float]:
    """The linear probe's final-layer accuracies of the same encoder (stage selfsup_probe's row), so one
    table holds the course's layout: method x (probe with 10 labels per class, with all, transfer)."""
    path = details_path(root, f"selfsup_probe/{row}")
    if not path.is_file():
        raise UserError(f"{path} not found: run the probe first (dvc repro selfsup_probe)")
    probe = json.loads(path.read_text())
    return {key: float(probe[key]) for key in PROBE_COLUMNS}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    params, root, _ = analysis.start(argv, __doc__.splitlines()[0], lambda p: p.trainer.cpus_per_worker)
    config = params.selfsup.transfer
    directory = resolve(params.data.root) / config.dataset
    num_classes = read_meta(directory).num_classes
    train_images, train_masks = load_split(directory, "train").tensors
    test_images, test_masks = load_split(directory, "test").tensors
    nets = trained_and_untrained(root, params)
    nets[SCRATCH] = nets.pop("random_init")  # fine-tuned from its random weights: training from scratch
    subsets = [label_subset(len(train_images), config.label_fraction, torch.Generator().manual_seed(params.seed + d))
               for d in range(config.draws)]

    identity = {"seed": params.seed, "encoder": params.selfsup.encoder.model_dump(), "transfer": config.model_dump()}
    folders = tuple(f"models/selfsup/{method}" for method in listed_methods(params))
    with analysis.stage_run(params, root, "selfsup", STAGE, "transfer", identity, folders) as run:
        rows, curves, examples = {}, {}, {}
        for name, encoder in nets.items():
            scores, losses = [], []
            for draw, subset in enumerate(subsets):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(params.seed + draw)  # the decoder's weights: the same for every encoder
                    net = SegmentationTransfer(encoder, num_classes, config.downscale)
                batches = torch.Generator().manual_seed(params.seed + draw)
                losses.append(fine_tune(net, train_images[subset], train_masks[subset], config.steps, config.batch_size,
                                        config.lr, config.weight_decay, batches))
                scores.append(evaluate(net, test_images, test_masks, num_classes))
                if draw == 0:
                    with torch.no_grad():
                        examples[name] = net(test_images[:4]).argmax(1)
            miou = np.array([s["miou"] for s in scores])
            rows[name] = {"test/transfer_miou": float(miou.mean()), "test/transfer_miou_std": float(miou.std()),
                          "test/transfer_pixel_accuracy": float(np.mean([s["pixel_accuracy"] for s in scores])),
                          "test/labelled_scenes": float(len(subsets[0]))}
            curves[name] = np.mean(losses, axis=0)
            print(f"[{STAGE}] {name:12s} test mIoU {miou.mean():.3f} +- {miou.std():.3f}  "
                  f"pixel accuracy {rows[name]['test/transfer_pixel_accuracy']:.3f}", flush=True)
        for name, row in rows.items():
            row["test/transfer_miou_scratch"] = rows[SCRATCH]["test/transfer_miou"]
            row.update(probe_columns(root, "random_init" if name == SCRATCH else name))
        run.figures["transfer"] = transfer_figure(test_images[:4], test_masks[:4], examples, curves,
                                                  {name: row["test/transfer_miou"] for name, row in rows.items()})
        run.write(rows, "test/transfer_miou")


if __name__ == "__main__":
    run_and_exit(main)
