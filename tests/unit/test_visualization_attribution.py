"""The visualization family's attribution methods: agreement with captum for the written-out ones, known
answers by hand (Grad-CAM on a known last conv map, RISE and occlusion on models linear in the input),
guided backprop's rule at every ReLU, and the uniform contract (shape, dtype, no .grad left behind)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop
from torch import nn

from components.families.visualization.attribution import ATTRIBUTIONS, attribute, reference, rise, rise_masks

NAMES = ["gradient", "gradient_x_input", "deconvnet", "guided_backprop", "grad_cam", "guided_grad_cam", "occlusion",
         "rise"]


class _Record(torch.autograd.Function):
    """Identity whose backward records the gradient it receives: placed just before a ReLU, that is the
    gradient the ReLU's backward passes on (after any hook captum puts on the ReLU's input)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, store: list) -> torch.Tensor:
        ctx.store = store
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.store.append(grad.detach().clone())
        return grad, None


class Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.grads: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Record.apply(x, self.grads)


def small_cnn() -> nn.Sequential:
    """conv-ReLU-conv-ReLU-maxpool-linear on 2x8x8, seeded, eval mode; a Probe before each ReLU."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), Probe(), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1), Probe(), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 3),
    ).eval()


@pytest.fixture
def cnn():
    model = small_cnn()
    images = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, images, torch.tensor([0, 1, 2])


def options(model: nn.Sequential) -> dict:
    return {"layer": model[6], "patch": 3, "stride": 2, "num_masks": 64, "cell_size": 2, "p": 0.5,
            "generator": torch.Generator().manual_seed(0), "batch_size": 16}


def test_gradient_equals_captum_saliency(cnn):
    model, images, targets = cnn
    ours = ATTRIBUTIONS["gradient"](model, images, targets)
    assert torch.allclose(ours, reference("gradient")(model, images, targets), atol=1e-7)
    assert ours.min() >= 0 and ours.max() > 0


@pytest.mark.parametrize("index", [3, 6])  # the second conv (8x8) and the max-pool after it (4x4, upsampled)
def test_grad_cam_equals_captum_layer_grad_cam_upsampled(cnn, index):
    model, images, targets = cnn
    ours = ATTRIBUTIONS["grad_cam"](model, images, targets, layer=model[index])
    theirs = reference("grad_cam")(model, images, targets, layer=model[index])
    assert ours.shape == (3, 8, 8) and ours.max() > 0
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert not model[index]._forward_hooks  # its hook is removed


def cam_model(downsample: nn.Module) -> nn.Sequential:
    """layer (nn.Identity) -> global average pool -> linear W (bias 0): A is ``downsample(images)``."""
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.0]]))
    return nn.Sequential(downsample, nn.Identity(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear).eval()


A = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[4.0, -1.0], [0.0, 2.0]]])  # (K=2, h=2, w=2)
# alpha_k = W[target, k] / (h w): target 0 -> (0.25, -0.5), target 1 -> (0.125, 0.25); map = ReLU(sum_k alpha_k A_k)
CAM = torch.tensor([[[0.0, 1.0], [0.75, 0.0]], [[1.125, 0.0], [0.375, 1.0]]])


def test_grad_cam_by_hand_on_a_known_last_conv_map():
    model = cam_model(nn.Identity())
    images = A.expand(2, -1, -1, -1)
    cam = ATTRIBUTIONS["grad_cam"](model, images, torch.tensor([0, 1]), layer=model[1])
    assert torch.equal(cam, CAM)


def test_grad_cam_upsamples_bilinearly_without_aligned_corners():
    model = cam_model(nn.AvgPool2d(2))
    images = A.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2).expand(2, -1, -1, -1)  # avg-pools back to A
    cam = ATTRIBUTIONS["grad_cam"](model, images, torch.tensor([0, 1]), layer=model[1])
    # 2 -> 4 with align_corners=False: output pixel centres at source coordinates -0.25 (clamped), 0.25, 0.75, 1.25
    up = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]])
    assert torch.allclose(cam, up @ CAM @ up.T, atol=1e-6)
    assert torch.allclose(cam, reference("grad_cam")(model, images, torch.tensor([0, 1]), layer=model[1]), atol=1e-6)


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
def test_guided_grad_cam_is_guided_backprop_times_the_bilinear_grad_cam(cnn):
    model, images, targets = cnn
    guided = GuidedBackprop(model).attribute(images.clone().requires_grad_(True), target=targets)
    cam = ATTRIBUTIONS["grad_cam"](model, images, targets, layer=model[6])  # 4x4, upsampled bilinearly
    ours = ATTRIBUTIONS["guided_grad_cam"](model, images, targets, layer=model[6])
    assert torch.allclose(ours, (guided * cam[:, None]).sum(1), atol=1e-6)
    assert torch.allclose(ATTRIBUTIONS["guided_backprop"](model, images, targets), guided.sum(1), atol=1e-6)


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
def test_guided_backprop_passes_only_non_negative_gradients_through_every_relu(cnn):
    model, images, targets = cnn
    probes = [m for m in model if isinstance(m, Probe)]
    x = images.clone().requires_grad_(True)
    torch.autograd.grad(model(x).gather(1, targets[:, None]).sum(), x)  # plain gradient: some negative
    assert all((probe.grads.pop() < 0).any() for probe in probes)
    GuidedBackprop(model).attribute(images.clone().requires_grad_(True), target=targets)
    for probe in probes:
        (grad,) = probe.grads
        assert (grad >= 0).all() and (grad > 0).any()


class LinearProbability(nn.Module):
    """Two classes with softmax probability f(x) = w.x for class 0 (logits log f, log(1 - f))."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", w.flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = (x.flatten(1) @ self.w).clamp(1e-12, 1 - 1e-12)
        return torch.stack([f.log(), torch.log1p(-f)], dim=1)


def test_rise_known_answer_when_the_probability_is_linear_in_the_input():
    # Per-pixel Bernoulli(p) masks (cell_size 1): E[f(M x) M_i] / p = w_i x_i + p sum_{j != i} w_j x_j.
    x = torch.tensor([[0.2, 0.5, 1.0], [0.8, 0.4, 0.6], [1.0, 0.3, 0.9]])
    wx = torch.tensor([[0.0, 0.02, 0.04], [0.06, 0.08, 0.10], [0.12, 0.14, 0.16]])  # w.x = 0.72
    model = LinearProbability(wx / x).eval()
    images = torch.stack([x, 0.5 * x, x])[:, None]
    p, num_masks = 0.5, 40000
    sal = rise(model, images, torch.tensor([0, 0, 1]), num_masks=num_masks, cell_size=1, p=p,
               generator=torch.Generator().manual_seed(0), batch_size=10000)
    expected0 = wx + p * (wx.sum() - wx)

    def atol(max_probability: float) -> float:
        """4 standard deviations of the mean: each term P_m M_m,i / p has variance <= E[P^2 M_i] / p^2
        <= P_max^2 / p."""
        return 4 * max_probability / (p * num_masks) ** 0.5

    assert sal.shape == (3, 3, 3) and sal.dtype == torch.float32
    assert torch.allclose(sal[0], expected0, atol=atol(0.72))  # P <= f(x) = 0.72 (about 0.02)
    assert torch.allclose(sal[1], 0.5 * expected0, atol=atol(0.36))
    assert torch.allclose(sal[2], 1 - expected0, atol=atol(1.0))  # P(class 1) = 1 - f <= 1
    # the per-pixel pattern (1 - p) w_i x_i (spread 0.08) is resolved, not only the common level
    assert (sal[0] - sal[0].mean() - (1 - p) * (wx - wx.mean())).abs().max() < atol(0.72)


def test_rise_shares_masks_across_images_and_is_seeded(cnn):
    model, images, targets = cnn
    images, targets = torch.cat([images, images[:1]]), torch.cat([targets, targets[:1]])
    kw = {"num_masks": 50, "cell_size": 3, "p": 0.4, "batch_size": 7}
    first = rise(model, images, targets, generator=torch.Generator().manual_seed(3), **kw)
    again = rise(model, images, targets, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(first, again) and torch.equal(first[0], first[3])
    # p = 1 keeps every cell: every mask is all ones, so every pixel gets the unmasked probability
    full = rise(model, images, targets, generator=torch.Generator().manual_seed(3), **{**kw, "p": 1.0})
    prob = model(images).softmax(1).gather(1, targets[:, None]).detach()
    assert torch.allclose(full, prob[:, :, None].expand(-1, 8, 8), atol=1e-6)


def test_rise_masks_are_smooth_cropped_grids():
    masks = rise_masks(200, (8, 8), cell_size=4, p=0.5, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (200, 8, 8) and masks.min() >= 0 and masks.max() <= 1
    assert ((masks > 0) & (masks < 1)).any()  # bilinear upsampling: soft edges
    assert abs(masks.mean().item() - 0.5) < 0.05
    # unshifted, the corner pixel would sit in the clamped border of the upsampling (a cell's 0/1 value);
    # the random shift in [0, cell_size) moves it between cells
    assert ((masks[:, 0, 0] > 0) & (masks[:, 0, 0] < 1)).any()
    binary = rise_masks(50, (5, 7), cell_size=1, p=0.3, generator=torch.Generator().manual_seed(0))
    assert binary.shape == (50, 5, 7) and set(binary.unique().tolist()) <= {0.0, 1.0}


def linear_classifier(w: torch.Tensor) -> nn.Sequential:
    linear = nn.Linear(w.numel(), 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([w.flatten(), -w.flatten()]))
    return nn.Sequential(nn.Flatten(), linear).eval()


def test_occlusion_and_gradient_x_input_on_a_linear_model():
    g = torch.Generator().manual_seed(2)
    w, images = torch.randn(2, 4, 4, generator=g), torch.rand(2, 2, 4, 4, generator=g)
    model, targets = linear_classifier(w), torch.tensor([0, 1])
    contribution = (w * images).sum(1) * torch.tensor([1.0, -1.0])[:, None, None]  # target 1's logit is -w.x
    # zeroing pixel i (all channels) lowers the target's logit by its contribution
    assert torch.allclose(ATTRIBUTIONS["occlusion"](model, images, targets, patch=1, stride=1), contribution, atol=1e-5)
    assert torch.allclose(ATTRIBUTIONS["gradient_x_input"](model, images, targets), contribution, atol=1e-6)
    # non-overlapping 2x2 squares: every pixel gets its square's total
    blocks = F.avg_pool2d(contribution[:, None], 2)[:, 0] * 4
    expected = blocks.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    assert torch.allclose(ATTRIBUTIONS["occlusion"](model, images, targets, patch=2, stride=2), expected, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_every_method_keeps_the_contract(cnn, name):
    model, images, targets = cnn
    before = images.clone()
    with torch.no_grad():  # a caller's no_grad does not stop the gradient methods
        out = attribute(name, model, images, targets, **options(model))
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.isfinite(out).all() and not out.requires_grad
    assert all(param.grad is None for param in model.parameters())
    assert torch.equal(images, before) and not images.requires_grad
    if name in ("gradient", "grad_cam", "rise"):
        assert out.min() >= 0


def test_registry_names():
    assert sorted(ATTRIBUTIONS) == sorted(NAMES)


def test_attribute_passes_only_accepted_options_and_names_what_is_missing(cnn):
    model, images, targets = cnn
    assert torch.equal(attribute("gradient", model, images, targets, **options(model)),
                       ATTRIBUTIONS["gradient"](model, images, targets))
    with pytest.raises(ValueError, match=r"grad_cam.*layer"):
        attribute("grad_cam", model, images, targets, patch=3)
    rise_options = {k: v for k, v in options(model).items() if k != "generator"}
    with pytest.raises(ValueError, match=r"rise.*generator"):
        attribute("rise", model, images, targets, **rise_options)
    with pytest.raises(ValueError, match=r"occlusion.*stride"):
        attribute("occlusion", model, images, targets, patch=3)
    with pytest.raises(ValueError, match="unknown"):
        attribute("lime", model, images, targets)
    with pytest.raises(ValueError, match="rise"):
        reference("rise")
