import pytest
import torch

from singleshot.models import create_model
from singleshot.models.backbones.mobilenet import MobileNetV2Backbone, make_divisible
from singleshot.priors import FACE_PRIOR_SIZES, linear_scale_prior_spec

# Hand-written from torchvision's mobilenetv2.py (features.N layout) for width 1.0: (key, shape).
TORCHVISION_KEYS = [
    ("features.0.0.weight", (32, 3, 3, 3)),  # stem conv 3x3 s2
    ("features.0.1.weight", (32,)),  # its BatchNorm
    ("features.1.conv.0.0.weight", (32, 1, 3, 3)),  # t=1 block: depthwise first, no expansion
    ("features.1.conv.1.weight", (16, 32, 1, 1)),  # linear projection
    ("features.1.conv.2.running_var", (16,)),
    ("features.2.conv.0.0.weight", (96, 16, 1, 1)),  # expansion 16 * 6
    ("features.2.conv.1.0.weight", (96, 1, 3, 3)),  # depthwise
    ("features.2.conv.2.weight", (24, 96, 1, 1)),  # projection
    ("features.2.conv.3.weight", (24,)),
    ("features.7.conv.0.0.weight", (192, 32, 1, 1)),
    ("features.14.conv.0.0.weight", (576, 96, 1, 1)),  # SSDLite's stride-16 tap
    ("features.14.conv.1.0.weight", (576, 1, 3, 3)),
    ("features.17.conv.2.weight", (320, 960, 1, 1)),
    ("features.18.0.weight", (1280, 320, 1, 1)),  # last 1x1 conv
    ("features.18.1.num_batches_tracked", ()),
]


def torchvision_feature_shapes() -> dict[str, tuple[int, ...]]:
    """Every ``features.*`` state-dict entry of torchvision's mobilenet_v2 (width 1.0), written from its source."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, conv: tuple[int, ...], bn_prefix: str) -> None:
        shapes[f"{prefix}.weight"] = conv
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn_prefix}.{name}"] = (conv[0],)
        shapes[f"{bn_prefix}.num_batches_tracked"] = ()

    conv_bn("features.0.0", (32, 3, 3, 3), "features.0.1")
    cin, index = 32, 1
    for t, c, n, _ in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for _ in range(n):
            hidden, j = cin * t, 0
            p = f"features.{index}.conv"
            if t != 1:
                conv_bn(f"{p}.0.0", (hidden, cin, 1, 1), f"{p}.0.1")
                j = 1
            conv_bn(f"{p}.{j}.0", (hidden, 1, 3, 3), f"{p}.{j}.1")
            conv_bn(f"{p}.{j + 1}", (c, hidden, 1, 1), f"{p}.{j + 2}")
            cin, index = c, index + 1
    conv_bn("features.18.0", (1280, 320, 1, 1), "features.18.1")
    return shapes


@pytest.fixture(scope="module")
def backbone():
    return MobileNetV2Backbone()


def test_make_divisible_hand_cases():
    assert make_divisible(32 * 1.0) == 32
    assert make_divisible(16 * 0.5) == 8
    assert make_divisible(32 * 0.35) == 16  # 11.2 rounds to 8, more than 10% below: one divisor added
    assert make_divisible(24 * 0.75) == 24  # 18 rounds to 16 < 0.9 * 18 = 16.2
    assert make_divisible(96 * 0.75) == 72
    assert make_divisible(1280 * 1.4) == 1792


def test_torchvision_layout_spot_keys(backbone):
    state = backbone.state_dict()
    for key, shape in TORCHVISION_KEYS:
        assert tuple(state[key].shape) == shape, key


def test_torchvision_layout_complete_and_loads_one_to_one(backbone):
    expected = torchvision_feature_shapes()
    state = backbone.state_dict()
    assert len(expected) == len(state) == 312  # 314 in torchvision's file, less classifier.1.weight / .bias
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    # A torchvision-layout checkpoint (classifier keys dropped) loads strictly.
    checkpoint = {k: torch.randn(s) if s else torch.tensor(0) for k, s in expected.items()}
    checkpoint["classifier.1.weight"], checkpoint["classifier.1.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)
    MobileNetV2Backbone().load_state_dict({k: v for k, v in checkpoint.items() if not k.startswith("classifier.")})


def test_parameter_count_matches_torchvision(backbone):
    features = sum(p.numel() for p in backbone.parameters())
    assert features == 2_223_872
    # torchvision's mobilenet_v2 has 3,504,872 parameters: the features plus Linear(1280, 1000) with bias.
    assert features + 1280 * 1000 + 1000 == 3_504_872


def test_strides_and_channels_per_level(backbone):
    assert backbone.strides == (8, 16, 32)
    assert backbone.out_channels == (32, 96, 1280)
    with torch.no_grad():
        maps = backbone.eval()(torch.zeros(1, 3, 96, 128))
    assert [tuple(m.shape) for m in maps] == [(1, 32, 12, 16), (1, 96, 6, 8), (1, 1280, 3, 4)]


@pytest.mark.parametrize(
    ("kwargs", "strides", "channels", "built"),
    [
        ({"out_strides": (16, 32), "expansion_taps": True}, (16, 32), (576, 1280), 19),  # SSDLite
        ({"expansion_taps": True}, (8, 16, 32), (192, 576, 1280), 19),
        ({"last_conv": False}, (8, 16, 32), (32, 96, 320), 18),
        ({"out_strides": (2, 4, 8)}, (2, 4, 8), (16, 24, 32), 7),  # stops after features.6
        ({"out_strides": (4, 8), "expansion_taps": True}, (4, 8), (144, 192), 8),  # needs features.7's expansion
        ({"width": 0.5}, (8, 16, 32), (16, 48, 1280), 19),  # 1280 kept below width 1 (torchvision)
        ({"width": 1.4}, (8, 16, 32), (48, 136, 1792), 19),
    ],
)
def test_output_choices(kwargs, strides, channels, built):
    b = MobileNetV2Backbone(**kwargs).eval()
    assert b.strides == strides and b.out_channels == channels
    assert len(b.features) == built
    with torch.no_grad():
        maps = b(torch.zeros(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == list(channels)
    assert [m.shape[-1] for m in maps] == [-(-64 // s) for s in strides]


def test_expansion_taps_do_not_change_the_network():
    torch.manual_seed(0)
    tapped = MobileNetV2Backbone(out_strides=(16, 32), expansion_taps=True).eval()
    plain = MobileNetV2Backbone(out_strides=(16, 32)).eval()
    plain.load_state_dict(tapped.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expansion, last = tapped(x)
        _, reference_last = plain(x)
        reference_expansion = tapped.features[14].conv[0](tapped.features[:14](x))
    torch.testing.assert_close(last, reference_last)
    torch.testing.assert_close(expansion, reference_expansion)


@pytest.mark.parametrize("kwargs", [{"out_strides": (64,)}, {"out_strides": (16, 8)}, {"out_strides": ()}])
def test_invalid_output_choices(kwargs):
    with pytest.raises(ValueError):
        MobileNetV2Backbone(**kwargs)


def test_linear_scale_prior_spec():
    spec = linear_scale_prior_spec((16, 32, 64, 128, 256, 512))
    assert [lv.sizes[0] for lv in spec.levels] == pytest.approx([0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
    assert [lv.next_size for lv in spec.levels] == pytest.approx([0.35, 0.5, 0.65, 0.8, 0.95, 1.0])
    assert spec.priors_per_cell == (6,) * 6


def test_ssd_mobilenet_v2_recipe():
    m = create_model("ssd_mobilenet_v2")
    assert m.input_size == (300, 300) and m.num_classes == 21
    assert m.backbone.out_channels == (576, 1280) and m.backbone.strides == (16, 32)
    # The TensorFlow SSDLite grid at 300 px.
    assert m.feature_sizes((300, 300)) == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert m.priors().shape == (3000, 4)
    small = create_model("ssd_mobilenet_v2", num_classes=3, min_scale=0.07)
    assert [lv.sizes[0] for lv in small.prior_spec.levels] == pytest.approx([0.07 + 0.176 * k for k in range(6)])
    with pytest.raises(ValueError, match="min_scale"):
        create_model("ssd_mobilenet_v2", min_scale=0.9, max_scale=0.5)


def test_face_mobilenet_v2_recipe():
    m = create_model("face_mobilenet_v2")
    assert m.input_size == (320, 320) and m.num_classes == 2
    assert m.backbone.strides == (8, 16, 32) and m.backbone.out_channels == (192, 576, 1280)
    assert m.feature_sizes((320, 320)) == [(40, 40), (20, 20), (10, 10), (5, 5)]
    assert m.prior_spec.unit == "pixels"
    assert tuple(lv.sizes for lv in m.prior_spec.levels) == tuple(tuple(map(float, s)) for s in FACE_PRIOR_SIZES)
    assert create_model("face_mobilenet_v2", width=0.5).backbone.out_channels == (96, 288, 1280)
