import math

import pytest
import torch

from singleshot.priors import PriorLevel, PriorSpec, generate_priors, ssd300_prior_spec

SSD300_FEATURES = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


def ssd300_priors():
    return generate_priors(ssd300_prior_spec(), (300, 300), SSD300_FEATURES)


def test_ssd300_has_8732_priors():
    spec = ssd300_prior_spec()
    assert spec.priors_per_cell == (4, 6, 6, 6, 4, 4)
    assert spec.num_priors(SSD300_FEATURES) == 8732
    assert ssd300_priors().shape == (8732, 4)


def test_ssd300_hand_computed_priors():
    priors = ssd300_priors()
    # conv4_3, cell (row 19, col 19), the 4 priors: ratio 1 (s=0.1), extra sqrt(0.1*0.2), ratio 2, ratio 1/2.
    c = 19.5 / 38
    i = (19 * 38 + 19) * 4
    expected = torch.tensor(
        [
            [c, c, 0.1, 0.1],
            [c, c, math.sqrt(0.02), math.sqrt(0.02)],
            [c, c, 0.1 * math.sqrt(2), 0.1 / math.sqrt(2)],
            [c, c, 0.1 / math.sqrt(2), 0.1 * math.sqrt(2)],
        ]
    )
    torch.testing.assert_close(priors[i : i + 4], expected)
    # conv7 starts after 38*38*4 = 5776 priors; cell (10, 10): ratios 1, extra sqrt(0.2*0.375), 2, 1/2, 3, 1/3.
    c = 10.5 / 19
    i = 5776 + (10 * 19 + 10) * 6
    s = 0.2
    expected = torch.tensor(
        [
            [c, c, s, s],
            [c, c, math.sqrt(0.2 * 0.375), math.sqrt(0.2 * 0.375)],
            [c, c, s * math.sqrt(2), s / math.sqrt(2)],
            [c, c, s / math.sqrt(2), s * math.sqrt(2)],
            [c, c, s * math.sqrt(3), s / math.sqrt(3)],
            [c, c, s / math.sqrt(3), s * math.sqrt(3)],
        ]
    )
    torch.testing.assert_close(priors[i : i + 6], expected)
    # conv11_2's single cell: 0.9, extra sqrt(0.9 * 1), then ratio 2 and 1/2 clipped to the image.
    expected = torch.tensor(
        [
            [0.5, 0.5, 0.9, 0.9],
            [0.5, 0.5, math.sqrt(0.9), math.sqrt(0.9)],
            [0.5, 0.5, 1.0, 0.9 / math.sqrt(2)],
            [0.5, 0.5, 0.9 / math.sqrt(2), 1.0],
        ]
    )
    torch.testing.assert_close(priors[-4:], expected)


def test_corner_prior_is_clipped_inside_image():
    priors = ssd300_priors()
    # conv4_3 cell (0, 0), ratio 1: centre 0.5/38, side 0.1 -> x from -0.0368 clipped to 0.
    x2 = 0.5 / 38 + 0.05
    torch.testing.assert_close(priors[0], torch.tensor([x2 / 2, x2 / 2, x2, x2]))
    xyxy = torch.cat((priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2), 1)
    assert xyxy.min() >= -1e-6 and xyxy.max() <= 1 + 1e-6


def test_unclipped_spec_keeps_raw_priors():
    spec = PriorSpec(levels=ssd300_prior_spec().levels, clip=False)
    priors = generate_priors(spec, (300, 300), SSD300_FEATURES)
    torch.testing.assert_close(priors[0], torch.tensor([0.5 / 38, 0.5 / 38, 0.1, 0.1]))


def test_pixel_priors_any_input_size():
    spec = PriorSpec(levels=(PriorLevel(sizes=(16.0, 32.0), stride=8),), unit="pixels")
    priors = generate_priors(spec, (480, 640), [(60, 80)])
    assert priors.shape == (60 * 80 * 2, 4)
    # Cell (row 30, col 40): centre (40.5/80, 30.5/60); sizes 16 and 32 pixels, square in pixels.
    i = (30 * 80 + 40) * 2
    torch.testing.assert_close(priors[i], torch.tensor([40.5 / 80, 30.5 / 60, 16 / 640, 16 / 480]))
    torch.testing.assert_close(priors[i + 1], torch.tensor([40.5 / 80, 30.5 / 60, 32 / 640, 32 / 480]))


def test_invalid_specs_are_refused():
    with pytest.raises(ValueError):
        PriorLevel(sizes=())
    with pytest.raises(ValueError):
        PriorLevel(sizes=(0.1, 0.2), next_size=0.3)
    with pytest.raises(ValueError):
        PriorSpec(levels=(PriorLevel(sizes=(0.1,)),), unit="inches")
    with pytest.raises(ValueError, match="levels"):
        generate_priors(ssd300_prior_spec(), (300, 300), SSD300_FEATURES[:3])


def test_pixel_priors_sit_on_the_stride_grid_when_the_stride_does_not_divide_the_input():
    # 480 rows at stride 64 are 7.5 cells, computed as 8 (padded convolutions): the cells stay 64 px apart and the
    # last one is centred on row 7.5 * 64 = 480, not spread over the input as (i + 0.5) / 8 * 480 = 450 would be.
    spec = PriorSpec(levels=(PriorLevel(sizes=(128.0,), stride=64),), unit="pixels", clip=False)
    priors = generate_priors(spec, (480, 640), [(8, 10)])
    centres_px = priors[:, :2].view(8, 10, 2) * torch.tensor([640.0, 480.0])
    torch.testing.assert_close(centres_px[:, 0, 1], torch.arange(8.0) * 64 + 32)
    torch.testing.assert_close(centres_px[0, :, 0], torch.arange(10.0) * 64 + 32)
    torch.testing.assert_close(priors[-1], torch.tensor([608 / 640, 1.0, 128 / 640, 128 / 480]))


def test_pixel_priors_at_sizes_the_stride_divides_are_the_ssd_grid():
    # where the stride divides the input both conventions agree (the 320 x 320 training crops of the face models)
    spec = PriorSpec(levels=(PriorLevel(sizes=(32.0,), stride=16), PriorLevel(sizes=(128.0,), stride=64)),
                     unit="pixels", clip=False)
    priors = generate_priors(spec, (320, 320), [(20, 20), (5, 5)])
    ssd_rows = torch.cat([(torch.arange(f) + 0.5) / f for f in (20, 5)])
    rows = torch.cat([priors[:400].view(20, 20, 4)[:, 0, 1], priors[400:].view(5, 5, 4)[:, 0, 1]])
    torch.testing.assert_close(rows, ssd_rows)


def test_pixel_spec_needs_strides_that_match_the_maps():
    with pytest.raises(ValueError, match="stride"):
        PriorSpec(levels=(PriorLevel(sizes=(16.0,)),), unit="pixels")
    with pytest.raises(ValueError, match="positive"):
        PriorLevel(sizes=(16.0,), stride=0)
    spec = PriorSpec(levels=(PriorLevel(sizes=(16.0,), stride=8),), unit="pixels")
    generate_priors(spec, (100, 100), [(13, 13)])  # ceil(100 / 8): fine
    generate_priors(spec, (100, 100), [(12, 12)])  # floor: fine
    with pytest.raises(ValueError, match="declares stride 8.*7 cells"):
        generate_priors(spec, (100, 100), [(7, 13)])  # a stride-16 map declared as stride 8
