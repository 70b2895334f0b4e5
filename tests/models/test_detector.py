"""Priors sit where the network computes its cells, at every input size (the prior-grid property)."""

import copy
import dataclasses
import random

import pytest
import torch
from torch import nn

from singleshot.models import create_model, list_models
from singleshot.priors import generate_priors


def linearised(model: nn.Module) -> nn.Module:
    """A copy whose every convolution averages its window and whose BatchNorms pass values through: on a positive
    input every activation is positive (no ReLU closes), so each output cell is a positive weighted sum over its
    whole receptive field, nothing else."""
    m = copy.deepcopy(model).eval().double()  # float64: centroids exact to far below a pixel
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    return m


def receptive_field_centres(model: nn.Module, size: tuple[int, int], margin: int) -> list[tuple[torch.Tensor, ...]]:
    """Centre (centroid of the weights) of every cell's receptive field, ``[(cy (H_k,), cx (W_k,))]`` per level,
    in input pixels (pixel ``i`` spans ``[i, i + 1)``).

    Measured on the input embedded in a ``margin``-pixel frame (a multiple of every stride, wider than any receptive
    field's radius), so a border cell's field is not cut by the zero padding: cell ``j`` of the input is cell
    ``j + margin / stride`` of the framed one. The network is linear on the positive inputs used, so one pass on a
    coordinate ramp over one pass on ones gives every cell's centroid (SSD's cells read the same field whatever the
    input's size; the centroid of an averaging field is its centre).
    """
    h, w = size[0] + 2 * margin, size[1] + 2 * margin
    ones = torch.ones(1, 3, h, w, dtype=torch.float64)
    ys = (torch.arange(h, dtype=torch.float64) + 0.5).view(1, 1, h, 1).expand(1, 3, h, w)
    xs = (torch.arange(w, dtype=torch.float64) + 0.5).view(1, 1, 1, w).expand(1, 3, h, w)
    with torch.no_grad():
        maps = [m.sum(1) for m in model.features(torch.cat((ones, ys, xs)))]  # (3, H_k, W_k) per level
    out = []
    for level, (b, my, mx) in enumerate(maps):
        stride = model.prior_spec.levels[level].stride
        skip = margin // stride
        fh, fw = model.feature_sizes(size)[level]
        cy = (my / b)[skip : skip + fh, skip + fw // 2] - margin
        cx = (mx / b)[skip + fh // 2, skip : skip + fw] - margin
        out.append((cy, cx))
    return out


@pytest.fixture(scope="module")
def face_slim():
    return linearised(create_model("face_slim", width=0.25))


def test_face_priors_keep_one_offset_from_their_cells_at_every_input_size(face_slim):
    # The trained offsets assume one position of each prior relative to the cell that predicts it (learnt on
    # 320 x 320 crops); sizes that are not multiples of the strides (odd multiples of 32 for the stride-64 level)
    # must keep it. Every cell of every level, random sizes, and the sizes the Detector actually pads to.
    rng = random.Random(0)
    sizes = [(480, 640), (544, 800), (320, 320), (96, 160)]
    sizes += [(rng.randrange(64, 600), rng.randrange(64, 600)) for _ in range(3)]
    offsets: dict[int, list[torch.Tensor]] = {}
    unclipped_spec = dataclasses.replace(face_slim.prior_spec, clip=False)  # clipping moves border priors' centres
    for size in sizes:
        feature_sizes = face_slim.feature_sizes(size)
        priors = generate_priors(unclipped_spec, size, feature_sizes)
        start = 0
        for level, (cy_rf, cx_rf) in enumerate(receptive_field_centres(face_slim, size, margin=192)):
            spec = face_slim.prior_spec.levels[level]
            (fh, fw), n = feature_sizes[level], spec.priors_per_cell
            cells = priors[start : start + fh * fw * n].view(fh, fw, n, 4)
            start += fh * fw * n
            assert torch.equal(cells[..., :2], cells[:, :, :1, :2].expand(fh, fw, n, 2))  # one centre per cell
            dy = cells[:, 0, 0, 1].double() * size[0] - cy_rf
            dx = cells[0, :, 0, 0].double() * size[1] - cx_rf
            assert dy.abs().max() <= spec.stride / 2 and dx.abs().max() <= spec.stride / 2, (size, level)
            offsets.setdefault(level, []).extend([dy, dx])
    for level, parts in offsets.items():
        every = torch.cat(parts)
        assert float(every.max() - every.min()) < 1e-3, f"level {level}: prior-to-cell offset varies with the size"


@pytest.mark.parametrize("name", list_models())
def test_declared_strides_are_the_networks(name):
    # PriorSpec.cell_pitch refuses a map whose size does not fit its declared stride; here every pixel-prior model
    # is probed where a wrong stride would show: its maps grow by exactly one cell per stride of input.
    model = create_model(name)
    if model.prior_spec.unit != "pixels":
        pytest.skip("relative priors keep the SSD grid")
    strides = [level.stride for level in model.prior_spec.levels]
    big = max(strides)
    base, grown = (big, 2 * big), (2 * big, 4 * big)
    for s, (fh, fw), (gh, gw) in zip(strides, model.feature_sizes(base), model.feature_sizes(grown)):
        assert (gh - fh, gw - fw) == (big // s, 2 * big // s)
    model.priors((big + big // 2, big + 32))  # sides no deep stride divides: refused if a stride were wrong


def test_both_shots_of_a_dual_shot_model_use_the_stride_grid():
    # PAL's first shot has half-size priors on the same cells (DSFD, section 3.3): same centres at any size
    model = create_model("face_slim", width=0.25, pal=True)
    first, second = model.shot_prior_grids((480, 640))
    torch.testing.assert_close(first.pitch_x, second.pitch_x)
    unclipped = [generate_priors(dataclasses.replace(spec, clip=False), (480, 640), model.feature_sizes((480, 640)))
                 for spec in (model.first_shot_spec, model.prior_spec)]
    torch.testing.assert_close(unclipped[0][:, :2], unclipped[1][:, :2])
    torch.testing.assert_close(unclipped[0][:, 2:] * 2, unclipped[1][:, 2:])
    last_row_y = unclipped[1][-1, 1] * 480  # stride 64: 7.5 cells of 480 rows, the last centred at 7.5 * 64
    assert abs(float(last_row_y) - 480.0) < 1e-3
