"""Stage `selfsup_probe`: how much do self-supervised features know about the digits?

    python -m pipelines.selfsup_probe [--params params.yaml]

Every encoder of the self-supervised family (models/selfsup/<method>/), the same encoder with seeded
random weights (the row ``random_init``: the mean over ``selfsup.probe.random_inits`` initialisations, whose
spread it also records) and the raw pixels are read by a linear probe (components/families/selfsup/probe.py):
a logistic regression on frozen, standardised features, C chosen on val, scored on test; with every
training label and with ``selfsup.probe.labels_per_class`` per class (mean and std over ``draws``).
Three layers: the final features, the last conv stage's pooled maps (the same features when the
encoder has no feature layer, the default) and the first's (the mid-layer); the pixels are the same for
all three. Each encoder's
BatchNorm statistics are re-estimated on the training images first, without their labels (the
pretext trained them on augmented, rotated views). Writes metrics/selfsup_probe/<row>.json,
figures/selfsup_probe/ (t-SNE of every encoder's test features) and one MLflow run ``probe`` in ``selfsup``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.manifold import TSNE

from components import analysis
from components.data.tensors import load_classification_split
from components.errors import exit_on_user_error, run_and_exit
from components.families.selfsup.config import ProbeConfig
from components.families.selfsup.encoders import trained_and_untrained, untrained
from components.families.selfsup.family import listed_methods
from components.families.selfsup.figures import tsne_grid
from components.families.selfsup.models import PROBE_LAYERS, probe_features, reestimate_batch_norm
from components.families.selfsup.probe import Split, probe_all
from components.families.selfsup.task import data_dir

STAGE = "selfsup_probe"


@torch.no_grad()
def features(net: torch.nn.Module | None, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each probed layer's features of ``images``; the pixels themselves for every layer when ``net`` is None."""
    if net is None:
        return {suffix: images.flatten(1) for suffix in PROBE_LAYERS}
    return probe_features(net, images)


def probe_layers(net: torch.nn.Module | None, splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 config: ProbeConfig, seed: int) -> tuple[dict[str, float], torch.Tensor]:
    """Every :data:`PROBE_LAYERS` entry of one encoder probed (BatchNorm statistics re-estimated on the
    training images first): its metrics, and its final features of the test images."""
    if net is not None:
        reestimate_batch_norm(net, splits["train"][0])
    computed = {split: (features(net, images), labels) for split, (images, labels) in splits.items()}
    row: dict[str, float] = {}
    for suffix in PROBE_LAYERS:
        # A layer with the final features' values is probed once: the pixels are every layer, and
        # without a feature layer the final features are the last conv stage's
        if suffix and all(torch.equal(f[suffix], f[""]) for f, _ in computed.values()):
            row.update({f"test/probe_accuracy{suffix}{tail}": row[f"test/probe_accuracy{tail}"]
                        for tail in ("", "_few", "_few_std")})
            continue
        layer = {split: Split(f[suffix].numpy(), labels.numpy()) for split, (f, labels) in computed.items()}
        draws = torch.Generator().manual_seed(seed)  # every row and layer: the same labelled subsets
        scores = probe_all(layer["train"], layer["val"], layer["test"], config.c_grid, config.max_iter,
                           config.labels_per_class, config.draws, draws)
        row.update({f"test/probe_accuracy{suffix}": scores["accuracy"],
                    f"test/probe_accuracy{suffix}_few": scores["few"],
                    f"test/probe_accuracy{suffix}_few_std": scores["few_std"]})
    return row, computed["test"][0][""]


def mean_over_inits(rows: list[dict[str, float]]) -> dict[str, float]:
    """One row for several initialisations: each metric's mean, and per layer the spread of the 10-label
    mean over them (``..._few_init_std``; ``..._few_std`` stays the mean spread over label draws)."""
    row = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    row.update({f"test/probe_accuracy{suffix}_few_init_std": float(np.std([r[f"test/probe_accuracy{suffix}_few"]
                                                                             for r in rows]))
                for suffix in PROBE_LAYERS})
    return row


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    params, root, _ = analysis.start(argv, __doc__.splitlines()[0],
                                     lambda p: p.selfsup.trainer.cpus_per_worker)
    config = params.selfsup.probe
    splits = {split: load_classification_split(data_dir(params), split).tensors for split in ("train", "val", "test")}
    nets: dict[str, list[torch.nn.Module | None]] = {
        name: [net] for name, net in trained_and_untrained(root, params).items()}
    nets["random_init"] += [untrained(params, offset) for offset in range(1, config.random_inits)]
    nets["pixels"] = [None]

    identity = {"seed": params.seed, "encoder": params.selfsup.encoder.model_dump(), "probe": config.model_dump()}
    folders = tuple(f"models/selfsup/{method}" for method in listed_methods(params))
    with analysis.stage_run(params, root, "selfsup", STAGE, "probe", identity, folders) as run:
        rows, points = {}, {}
        for name, encoders in nets.items():
            probed = [probe_layers(net, splits, config, params.seed) for net in encoders]
            rows[name] = mean_over_inits([row for row, _ in probed]) if name == "random_init" else probed[0][0]
            if encoders[0] is not None:  # the t-SNE of the first (the random encoder: seed ``params.seed``)
                points[name] = TSNE(init="pca", random_state=params.seed, perplexity=min(30.0, len(
                    splits["test"][1]) / 4)).fit_transform(probed[0][1].numpy().astype("float64"))
        for row in rows.values():
            row["test/probe_accuracy_few_random"] = rows["random_init"]["test/probe_accuracy_few"]
            row["test/probe_accuracy_few_pixels"] = rows["pixels"]["test/probe_accuracy_few"]
        run.figures["tsne"] = tsne_grid(points, splits["test"][1].numpy(),
                                        {name: rows[name]["test/probe_accuracy_few"] for name in points})
        run.write(rows, "test/probe_accuracy_few")
    for name, row in rows.items():
        inits = f" (mean of {len(nets[name])} initialisations)" if len(nets[name]) > 1 else ""
        print(f"[{STAGE}] {name:12s} {config.labels_per_class}/class {row['test/probe_accuracy_few']:.3f} "
              f"+- {row['test/probe_accuracy_few_std']:.3f}  all labels {row['test/probe_accuracy']:.3f}  "
              f"last conv {row['test/probe_accuracy_conv_few']:.3f} / {row['test/probe_accuracy_conv']:.3f}  "
              f"mid-layer {row['test/probe_accuracy_mid_few']:.3f} / {row['test/probe_accuracy_mid']:.3f}{inits}",
              flush=True)


if __name__ == "__main__":
    run_and_exit(main)
