import torch

from singleshot.models.layers import L2Norm


def test_l2norm_scales_unit_vectors():
    layer = L2Norm(3, initial_scale=20.0)
    x = torch.tensor([3.0, 0.0, 4.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x).flatten(), torch.tensor([12.0, 0.0, 16.0]))
    assert torch.isfinite(layer(torch.zeros(1, 3, 2, 2))).all()
