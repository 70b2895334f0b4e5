import pytest
import torch

from singleshot.models.points import FacePointNet


@pytest.mark.parametrize("size,width", [(64, 1.0), (32, 0.5), (96, 1.5)])
def test_point_net_gives_ten_coordinates_per_crop(size, width):
    net = FacePointNet(width=width, input_size=size).eval()
    assert net(torch.zeros(3, 3, size, size)).shape == (3, 10)


def test_point_net_needs_a_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        FacePointNet(input_size=60)
