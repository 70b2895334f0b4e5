import torch

from singleshot.models.layers import L2Norm


def test_l2norm_scales_unit_vectors():
    layer = L2Norm(3, initial_scale=20.0)
    x = torch.tensor([3.0, 0.0, 4.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x).flatten(), torch.tensor([12.0, 0.0, 16.0]))
    assert torch.isfinite(layer(torch.zeros(1, 3, 2, 2))).all()


def test_fuse_conv_bn_keeps_outputs():
    import copy

    from singleshot.models import create_model
    from singleshot.models.layers import fuse_conv_bn

    torch.manual_seed(0)
    model = create_model("face_slim")
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(3):
            model(torch.randn(2, 3, 96, 128) * 2 + 0.5)
    model.eval()
    fused = fuse_conv_bn(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        (loc_a, conf_a), (loc_b, conf_b) = model(x), fused(x)
    torch.testing.assert_close(loc_a, loc_b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(conf_a, conf_b, rtol=1e-4, atol=1e-4)
