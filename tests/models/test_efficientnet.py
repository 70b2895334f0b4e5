import pytest
import torch

from singleshot.models import create_model
from singleshot.models.backbones.efficientnet import (
    EfficientNet,
    EfficientNetBackbone,
    drop_connect,
    efficientnet_backbone,
    efficientnet_plan,
    round_filters,
    round_repeats,
)
from singleshot.priors import FACE_PRIOR_SIZES, face_prior_spec
from singleshot.registry import BACKBONES

#: Parameters of the ImageNet classifiers in the paper's Table 2 (millions).
PUBLISHED_MILLIONS = {"b0": 5.3, "b1": 7.8, "b2": 9.2, "b3": 12, "b4": 19, "b5": 30, "b6": 43, "b7": 66}


def count_parameters(variant: str) -> int:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost, nothing runs
        return sum(p.numel() for p in EfficientNet(variant).parameters())


@pytest.mark.parametrize(
    ("filters", "width", "expected"),
    [
        (32, 1.0, 32),
        (32, 1.1, 32),  # 35.2 rounds down to 32, within 10%
        (32, 1.2, 40),  # 38.4 rounds up
        (16, 1.4, 24),  # 22.4
        (40, 1.1, 48),  # 44 rounds half up
        (112, 1.1, 120),  # 123.2
        (192, 1.2, 232),  # 230.4
        (320, 1.8, 576),
        (1280, 1.1, 1408),
        (1280, 2.0, 2560),
        (17, 0.7, 16),  # 11.9 would round to 8, more than 10% below: one divisor added
        (8, 0.5, 8),  # never below the divisor
    ],
)
def test_round_filters(filters, width, expected):
    assert round_filters(filters, width) == expected


@pytest.mark.parametrize(
    ("repeats", "depth", "expected"),
    [(1, 1.0, 1), (1, 1.1, 2), (2, 1.1, 3), (3, 1.1, 4), (3, 1.4, 5), (4, 1.8, 8), (2, 2.2, 5), (4, 3.1, 13)],
)
def test_round_repeats(repeats, depth, expected):
    assert round_repeats(repeats, depth) == expected


def test_block_counts_and_stage_channels():
    # B0: 1+2+2+3+3+4+1; B1 (depth 1.1): 2+3+3+4+4+5+2; B7 (depth 3.1): 4+7+7+10+10+13+4.
    assert [len(efficientnet_plan(v).blocks) for v in ("b0", "b1", "b7", "lite0")] == [16, 23, 55, 16]
    assert efficientnet_plan("b0").stage_channels == (16, 24, 40, 80, 112, 192, 320)
    assert efficientnet_plan("b3").stage_channels == (24, 32, 48, 96, 136, 232, 384)
    assert efficientnet_plan("b0").stage_strides == (2, 4, 8, 16, 16, 32, 32)
    assert (efficientnet_plan("b7").stem_channels, efficientnet_plan("b7").head_channels) == (64, 2560)
    assert (efficientnet_plan("lite4").stem_channels, efficientnet_plan("lite4").head_channels) == (32, 1280)


@pytest.mark.parametrize("variant", list(PUBLISHED_MILLIONS))
def test_classifier_parameters_match_the_paper(variant):
    assert count_parameters(variant) == pytest.approx(PUBLISHED_MILLIONS[variant] * 1e6, rel=0.03)


def test_classifier_parameters_exact():
    # torchvision's documented num_params (same architecture): B0 5,288,548 and B4 19,341,616.
    assert count_parameters("b0") == 5_288_548
    assert count_parameters("b4") == 19_341_616
    # EfficientNet-Lite0: 4.65 M (docs/pretrained.md; d-li14/efficientnet-lite.pytorch lists 4.652 M).
    assert count_parameters("lite0") == 4_652_008


def test_lite0_key_layout():
    state = {k: tuple(v.shape) for k, v in EfficientNet("lite0").state_dict().items()}
    expected = {
        "_conv_stem.weight": (32, 3, 3, 3),
        "_bn0.weight": (32,),
        "_blocks.0._depthwise_conv.weight": (32, 1, 3, 3),
        "_blocks.0._bn1.running_mean": (32,),
        "_blocks.0._project_conv.weight": (16, 32, 1, 1),
        "_blocks.0._bn2.weight": (16,),
        "_blocks.1._expand_conv.weight": (96, 16, 1, 1),
        "_blocks.1._bn0.weight": (96,),
        "_blocks.1._depthwise_conv.weight": (96, 1, 3, 3),
        "_blocks.1._bn1.bias": (96,),
        "_blocks.1._project_conv.weight": (24, 96, 1, 1),
        "_blocks.1._bn2.running_var": (24,),
        "_blocks.3._depthwise_conv.weight": (144, 1, 5, 5),  # stage 2 opens with a 5x5 on 24 * 6 channels
        "_blocks.15._project_conv.weight": (320, 1152, 1, 1),
        "_conv_head.weight": (1280, 320, 1, 1),
        "_bn1.weight": (1280,),
        "_fc.weight": (1000, 1280),
        "_fc.bias": (1000,),
    }
    for key, shape in expected.items():
        assert state[key] == shape, key
    assert "_blocks.0._expand_conv.weight" not in state and "_blocks.0._bn0.weight" not in state  # expansion 1
    assert not any("_se_" in k for k in state)  # Lite has no squeeze-and-excitation
    assert len(state) == 5 * 49 + 49 + 2  # 49 BatchNorms (5 entries each), 49 convs, the fc weight and bias


def test_b0_squeeze_excitation_keys():
    state = {k: tuple(v.shape) for k, v in EfficientNet("b0").state_dict().items()}
    assert state["_blocks.0._se_reduce.weight"] == (8, 32, 1, 1)  # int(32 * 0.25): ratio of the block's input
    assert state["_blocks.0._se_expand.bias"] == (32,)
    assert state["_blocks.1._se_reduce.weight"] == (4, 96, 1, 1)  # int(16 * 0.25), on the expanded 96 channels


def test_backbone_loads_a_classifier_checkpoint_one_to_one():
    classifier = EfficientNet("lite0")
    backbone = EfficientNetBackbone("lite0", include_head=True)
    state = {k: v for k, v in classifier.state_dict().items() if not k.startswith("_fc.")}
    backbone.load_state_dict(state)  # strict: same names and shapes, nothing missing


def test_classifier_forward():
    with torch.no_grad():
        assert EfficientNet("b0").eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b1"])
def test_registered_backbone_strides_and_channels(name):
    b = BACKBONES.get(name)().eval()
    assert b.strides == (8, 16, 32) and b.out_channels == (40, 112, 320)
    assert len(b._blocks) == {"efficientnet_b0": 16, "efficientnet_b1": 23}[name]
    with torch.no_grad():
        maps = b(torch.zeros(1, 3, 96, 128))
    assert [tuple(m.shape) for m in maps] == [(1, 40, 12, 16), (1, 112, 6, 8), (1, 320, 3, 4)]


@pytest.mark.parametrize(
    ("kwargs", "strides", "channels", "built"),
    [
        ({"out_stages": (1, 2, 4)}, (4, 8, 16), (24, 40, 112), 16),  # stops after stage 4: 2+3+3+4+4 blocks
        ({"out_strides": (4, 8, 16, 32)}, (4, 8, 16, 32), (24, 40, 112, 320), 23),
        ({"out_stages": (3, 5)}, (16, 32), (80, 192), 21),  # explicit stages, not the last of their stride
        ({"include_head": True}, (8, 16, 32), (40, 112, 1280), 23),
    ],
)
def test_b1_output_choices(kwargs, strides, channels, built):
    b = efficientnet_backbone("b1", **kwargs).eval()
    assert b.strides == strides and b.out_channels == channels and len(b._blocks) == built
    with torch.no_grad():
        maps = b(torch.zeros(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(c, -(-64 // s), -(-64 // s)) for c, s in zip(channels, strides)]


@pytest.mark.parametrize(
    ("variant", "channels"),
    [("b2", (48, 120, 352)), ("b4", (56, 160, 448)), ("b7", (80, 224, 640)), ("lite0", (40, 112, 320))],
)
def test_unregistered_variants_as_backbones(variant, channels):
    with torch.device("meta"):  # shape-only forward: B7 costs nothing here
        b = efficientnet_backbone(variant)
        maps = b(torch.empty(1, 3, 96, 128))
    assert b.name == f"efficientnet_{variant}" and b.out_channels == channels
    assert [tuple(m.shape) for m in maps] == [(1, c, 96 // s, 128 // s) for c, s in zip(channels, (8, 16, 32))]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"out_strides": (64,)},
        {"out_stages": (7,)},
        {"out_stages": (4, 2)},
        {"out_stages": (3, 4)},
        {"out_stages": (1, 2, 4), "include_head": True},
    ],
)
def test_invalid_output_choices(kwargs):
    with pytest.raises(ValueError):
        efficientnet_backbone("b0", **kwargs)


def test_drop_connect_drops_whole_samples():
    x = torch.ones(64, 2, 3, 3)
    assert drop_connect(x, 0.5, training=False) is x and drop_connect(x, 0.0, training=True) is x
    torch.manual_seed(0)
    y = drop_connect(x, 0.5, training=True)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample.min(1).values == per_sample.max(1).values).all()  # a sample is kept or dropped as a whole
    assert 0 < (per_sample[:, 0] == 0).sum() < 64


def test_face_prior_spec_by_strides():
    default = face_prior_spec((8, 16, 32, 64))
    assert tuple(lv.sizes for lv in default.levels) == tuple(tuple(map(float, s)) for s in FACE_PRIOR_SIZES)
    finer = face_prior_spec((4, 8, 16, 32, 64))
    assert [lv.sizes for lv in finer.levels] == [
        (10.0,),
        (16.0, 24.0),
        (32.0, 48.0),
        (64.0, 96.0),
        (128.0, 192.0, 256.0, 384.0),
    ]
    with pytest.raises(ValueError, match="stride"):
        face_prior_spec((2, 8, 16))  # no face size is <= 3 * 2 px


def test_ssd_efficientnet_recipes():
    b0 = create_model("ssd_efficientnet_b0")
    assert b0.input_size == (224, 224) and b0.num_classes == 2
    assert b0.feature_sizes((224, 224)) == [(28, 28), (14, 14), (7, 7), (4, 4)]
    b1 = create_model("ssd_efficientnet_b1")
    assert b1.input_size == (256, 256) and b1.backbone.name == "efficientnet_b1"
    assert b1.feature_sizes((256, 256)) == [(32, 32), (16, 16), (8, 8), (4, 4)]
    # Stage choice: strides 4, 8, 16 from the backbone, extras continue to 64, the face priors follow.
    fine = create_model("ssd_efficientnet_b0", out_stages=(1, 2, 4))
    assert fine.backbone.strides == (4, 8, 16)
    assert fine.feature_sizes((224, 224)) == [(56, 56), (28, 28), (14, 14), (7, 7), (4, 4)]
    assert [lv.stride for lv in fine.prior_spec.levels] == [4, 8, 16, 32, 64]
    assert fine.priors().shape[0] == 56 * 56 * 1 + 28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 2 + 4 * 4 * 4
