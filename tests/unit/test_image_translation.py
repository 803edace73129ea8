"""pix2pix and CycleGAN pieces with known answers: the PatchGAN's receptive-field arithmetic, the
cycle loss of identity generators, the FCN-score of a perfect labeller, the label rendering (the
scenes' palette and VOC's devkit colours), the resized VOC pairs, the unpaired split, the image pool,
the schedule and the params checks."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import balanced_accuracy_score
from torch import nn

from components.config import parse_params
from components.errors import UserError
from components.families.image_translation import data
from components.families.image_translation.config import Pix2PixConfig
from components.families.image_translation.data import (
    PALETTE,
    load_pairs,
    pascal_palette,
    render_labels,
    to_grey,
    to_rgb,
    unpaired,
)
from components.families.image_translation.networks import (
    ImagePool,
    PatchDiscriminator,
    UNetGenerator,
    patch_grid,
    receptive_field,
)
from components.families.image_translation.scoring import Scorer, fcn_score, load_scorer
from components.families.image_translation.task import cycle_terms, l1_distance
from components.metrics.segmentation import SegmentationMetrics, class_accuracy_from_confusion
from components.train.schedules import hold_then_linear

pytestmark = pytest.mark.usefixtures("one_thread")


def test_receptive_field_arithmetic_gives_the_papers_patch_sizes():
    assert [receptive_field(layers) for layers in (1, 2, 3)] == [16, 34, 70]  # 3: pix2pix's 70x70 PatchGAN


@pytest.mark.parametrize(("side", "layers"), [(64, 1), (64, 2), (64, 3), (256, 3)])
def test_patchgan_output_size_matches_the_conv_arithmetic(side, layers):
    net = PatchDiscriminator(3, 4, layers)
    out = net(torch.rand(2, 3, side, side))
    assert out.shape == (2, 1, patch_grid(side, layers), patch_grid(side, layers))
    if (side, layers) == (256, 3):
        assert out.shape[-1] == 30  # the paper's 30x30 map of 70x70 patches


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_one_score_sees_exactly_its_receptive_field(layers):
    """The input pixels one interior score depends on span receptive_field(layers) on each axis
    (instance norm, which pools over the map, replaced by the identity)."""
    torch.manual_seed(0)
    net = PatchDiscriminator(1, 4, layers)
    for name, module in list(net.net.named_children()):
        if isinstance(module, nn.InstanceNorm2d):
            net.net._modules[name] = nn.Identity()
    side = 2 * receptive_field(layers) + 32
    image = torch.rand(1, 1, side, side, requires_grad=True)
    scores = net(image)
    centre = scores.shape[-1] // 2
    scores[0, 0, centre, centre].backward()
    rows, cols = (image.grad[0, 0].abs() > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min()) + 1 == receptive_field(layers)
    assert int(cols.max() - cols.min()) + 1 == receptive_field(layers)


def test_unet_keeps_the_side_and_refuses_sides_it_cannot_halve():
    net = UNetGenerator(3, 3, 4, depth=6, dropout=0.5).eval()
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 64"):
        net(torch.rand(1, 3, 48, 48))


def test_cycle_loss_is_zero_for_identity_generators():
    labels, scenes = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    terms = cycle_terms(lambda x: x, lambda x: x, labels, scenes)
    assert float(terms.cycle) == 0 and float(terms.identity) == 0
    assert torch.equal(terms.fake_scenes, labels) and torch.equal(terms.fake_labels, scenes)
    inverted = cycle_terms(lambda x: 1 - x, lambda x: 1 - x, labels, scenes)  # inverses of each other
    assert float(inverted.cycle) == pytest.approx(0, abs=1e-7)
    expected = (1 - 2 * scenes).abs().mean() + (1 - 2 * labels).abs().mean()  # but not identities
    assert float(inverted.identity) == pytest.approx(float(expected))


def test_l1_is_on_the_papers_minus_one_to_one_scale():
    assert float(l1_distance(torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.25))) == pytest.approx(0.5)


class _Oracle(nn.Module):
    """A "segmentation network" that returns the true labels' one-hot logits, whatever it is shown."""

    def __init__(self, masks: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.masks, self.num_classes, self.calls = masks, num_classes, 0

    def forward(self, images):
        masks = self.masks[self.calls]
        self.calls += 1
        return nn.functional.one_hot(masks, self.num_classes).permute(0, 3, 1, 2).float()


def test_fcn_score_of_a_perfect_labeller_is_one_and_of_a_wrong_one_zero():
    masks = [torch.randint(0, 11, (4, 16, 16), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    scenes = [torch.rand(4, 3, 16, 16) for _ in masks]
    perfect = fcn_score(_Oracle(masks, 11), zip(scenes, masks, strict=True), 11)
    assert perfect == {"pixel_accuracy": 1.0, "class_accuracy": 1.0, "miou": 1.0}
    shifted = [(m + 1) % 11 for m in masks]
    wrong = fcn_score(_Oracle(shifted, 11), zip(scenes, masks, strict=True), 11)
    assert wrong == {"pixel_accuracy": 0.0, "class_accuracy": 0.0, "miou": 0.0}


def test_fcn_score_leaves_the_ignored_label_out():
    """VOC's boundary pixels (255) count for neither the labeller nor against it."""
    masks = torch.randint(0, 21, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    labelled = masks.clone()
    masks[:, :4] = 255  # the ignored band: the oracle labels it 0, a wrong class wherever the truth is not 0
    perfect = fcn_score(_Oracle([labelled.clamp(max=20)], 21), [(torch.rand(2, 3, 16, 16), masks)], 21, 255)
    assert perfect == {"pixel_accuracy": 1.0, "class_accuracy": 1.0, "miou": 1.0}
    labelled[:, :4] = 0
    assert fcn_score(_Oracle([labelled], 21), [(torch.rand(2, 3, 16, 16), masks)], 21, 255)["miou"] == 1.0


def test_a_grey_scorer_reads_the_channel_mean_and_a_colour_one_the_image():
    seen = []
    net = nn.Identity()
    net.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    images = torch.rand(2, 3, 4, 4)
    Scorer(net, in_channels=1)(images)
    Scorer(net, in_channels=3)(images)
    assert torch.equal(seen[0], to_grey(images)) and torch.equal(seen[1], images)

@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_class_accuracy_is_scikit_learns_balanced_accuracy():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (2000,), generator=generator)
    preds = torch.where(torch.rand(2000, generator=generator) < 0.6, target, torch.randint(0, 5, (2000,)))
    target[target == 3] = 2  # a class absent from the targets is left out of the mean
    metric = SegmentationMetrics(5)
    metric.update(preds.view(20, 100), target.view(20, 100))
    assert float(metric.compute()["class_accuracy"]) == pytest.approx(balanced_accuracy_score(target, preds))
    assert float(class_accuracy_from_confusion(torch.eye(3) * 7)) == 1.0


def test_label_maps_render_in_the_palette_and_scenes_round_trip_through_grey():
    masks = torch.tensor([[[0, 1], [10, 3]]])
    rendered = render_labels(masks)
    assert rendered.shape == (1, 3, 2, 2)
    assert torch.equal(rendered[0, :, 1, 0], PALETTE[10]) and torch.equal(rendered[0, :, 0, 0], torch.zeros(3))
    assert len({tuple(c.tolist()) for c in PALETTE}) == len(PALETTE)  # every class its own colour
    with pytest.raises(ValueError, match="label 11 has no colour"):
        render_labels(torch.tensor([[[11]]]))
    grey = torch.rand(2, 1, 4, 4)
    assert torch.allclose(to_grey(to_rgb(grey)), grey, atol=1e-7)
    colour = torch.rand(2, 3, 4, 4)
    assert to_rgb(colour) is colour


def test_voc_label_maps_render_in_the_devkits_colours():
    """VOClabelcolormap.m's values: the classes' colours and the boundary's cream."""
    colours = (pascal_palette() * 255).round().long()
    known = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 8: (64, 0, 0),
             15: (192, 128, 128), 20: (0, 64, 128), 255: (224, 224, 192)}
    assert {label: tuple(colours[label].tolist()) for label in known} == known
    assert len({tuple(c) for c in colours.tolist()}) == 256  # every label its own colour
    rendered = render_labels(torch.tensor([[[15, 255]]]), pascal_palette())
    assert torch.equal((rendered[0, :, 0, 1] * 255).round(), torch.tensor([224.0, 224, 192]))


def test_pairs_resize_as_they_load_with_labels_kept_labels(tmp_path, monkeypatch):
    """pix2pix's 256 px from a dataset prepared larger: images antialiased, masks nearest (no new labels)."""
    from components.data.schema import DENSE, write_split

    side = 32
    masks = torch.zeros(3, side, side, dtype=torch.uint8)
    masks[:, :, side // 2 :] = 7
    masks[:, :2, :] = 255  # a band two pixels wide: one row of it at half the size
    images = torch.randint(0, 256, (3, side, side, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    rows = {"id": [0, 1, 2], "image": [images[i].numpy().tobytes() for i in range(3)], "height": [side] * 3,
            "width": [side] * 3, "channels": [3] * 3, "semantic_mask": [masks[i].numpy().tobytes() for i in range(3)],
            "boxes": [[]] * 3, "labels": [[]] * 3, "instance_masks": [[]] * 3, "captions": [[]] * 3}
    write_split(rows, DENSE, tmp_path / "train.parquet")
    monkeypatch.setattr(data, "LOAD_ROWS", 2)  # two pieces: three rows
    full, half = load_pairs(tmp_path, "train"), load_pairs(tmp_path, "train", 16)
    assert full.tensors[0].shape == (3, side, side) and full.tensors[1].shape == (3, 3, side, side)
    assert half.tensors[0].shape == (3, 16, 16) and half.tensors[1].shape == (3, 3, 16, 16)
    assert set(half.tensors[0].unique().tolist()) == {0, 7, 255}
    assert (half.tensors[0][:, 0] == 255).all()
    assert torch.equal(half.tensors[0][:, 1:, :8], torch.zeros(3, 15, 8, dtype=torch.int64))
    assert float(half.tensors[1].min()) >= 0 and float(half.tensors[1].max()) <= 1
    assert torch.allclose(half.tensors[1].mean(), full.tensors[1].mean(), atol=0.02)  # averaging, not picking


def test_unpaired_split_never_holds_a_scene_and_its_own_label_map():
    masks = torch.arange(9).view(9, 1, 1).expand(9, 2, 2)
    scenes = torch.arange(9).float().view(9, 1, 1, 1).expand(9, 1, 2, 2)
    halves = unpaired(torch.utils.data.TensorDataset(masks, scenes))
    mask_ids = {int(m[0, 0]) for m, _ in halves}
    scene_ids = {int(s[0, 0, 0]) for _, s in halves}
    assert len(halves) == 4 and not mask_ids & scene_ids
    assert mask_ids == {0, 2, 4, 6} and scene_ids == {1, 3, 5, 7}


def test_image_pool_returns_history_or_the_batch_and_resumes_its_draws():
    assert torch.equal(ImagePool(0, seed=0).query(x := torch.rand(4, 1, 2, 2)), x)
    pool = ImagePool(3, seed=0)
    first = torch.arange(3).float().view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given
    state = pool.state_dict()
    later = torch.arange(3, 9).float().view(6, 1, 1, 1)
    out = pool.query(later)
    assert {float(v) for v in out.flatten()} <= set(range(9))
    assert any(float(v) < 3 for v in out.flatten())  # some came from the history
    resumed = ImagePool(3, seed=99)
    resumed.load_state_dict(state, torch.device("cpu"))
    assert torch.equal(resumed.query(later), out)


def test_hold_then_linear_schedule():
    factor = hold_then_linear(10)
    assert [factor(step) for step in (0, 4, 5, 6, 9, 10)] == pytest.approx([1, 1, 1, 0.8, 0.2, 0])


def test_pix2pix_needs_some_loss():
    base = {"epochs": 1, "lr": 2e-4, "betas": [0.5, 0.999], "lr_schedule": "constant"}
    with pytest.raises(ValueError, match="l1_weight and gan_weight are both 0"):
        Pix2PixConfig.model_validate({**base, "l1_weight": 0, "gan_weight": 0})


def test_params_checks_name_the_key(tiny_params):
    tiny_params["image_translation"]["generator"]["depth"] = 7
    with pytest.raises((UserError, ValueError), match="image_translation.generator.depth.*allowed: 2, 3, 4, 5, 6"):
        parse_params(tiny_params, "params.yaml")
    tiny_params["image_translation"]["generator"]["depth"] = 6
    tiny_params["image_translation"]["image_size"] = 96  # 96 / 2**6 is not whole
    with pytest.raises(UserError, match="depth: 6 halvings of the 96-px images .*allowed: 2, 3, 4, 5$"):
        parse_params(tiny_params, "params.yaml")


def test_the_scorer_must_train_on_the_translated_dataset(tiny_params):
    """Checked with the params, before any stage: not after hours of training when a stage loads it."""
    tiny_params["segmentation"]["dataset"] = "voc"
    with pytest.raises(UserError, match="image_translation.dataset: scenes, but its scorer models/segmentation/fcn "
                                        "trains on segmentation.dataset: voc; set both to the same dataset"):
        parse_params(tiny_params, "params.yaml")
    tiny_params["image_translation"].update(dataset="voc", image_size=64)
    parse_params(tiny_params, "params.yaml")


def test_a_scorer_trained_on_other_classes_is_refused_by_name(tmp_path):
    folder = tmp_path / "models" / "segmentation" / "fcn"
    folder.mkdir(parents=True)
    torch.save({"class_names": ["background", "aeroplane"]}, folder / "model.pt")
    with pytest.raises(UserError, match="models/segmentation/fcn: trained on classes.*segmentation.dataset: scenes"):
        load_scorer(tmp_path, "fcn", "scenes", ["background", "0"])
    with pytest.raises(UserError, match="dvc repro train_segmentation@unet"):
        load_scorer(tmp_path, "unet", "scenes", ["background", "0"])
