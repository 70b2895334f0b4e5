import pytest
import torch

from singleshot.losses import MultiBoxLoss
from singleshot.matching import match_priors, pad_targets
from singleshot.models import create_model, list_models, model_info


@pytest.fixture(scope="module", params=list_models())
def model(request):
    torch.manual_seed(0)
    return request.param, create_model(request.param)


def _size(name, m):
    # the DSFD recipes train at 640x640; a smaller input keeps these tests fast (any multiple of 128 works)
    return (256, 256) if name.startswith("dsfd") else m.input_size


def test_raw_output_shapes_match_priors(model):
    name, m = model
    m.eval()
    h, w = _size(name, m)
    with torch.no_grad():
        loc, conf = m(torch.zeros(2, 3, h, w))
    p = m.priors((h, w)).shape[0]
    assert loc.shape == (2, p, 4)
    assert conf.shape == (2, p, m.num_classes)
    if name == "ssd300_vgg16":
        assert p == 8732


def test_other_input_size(model):
    name, m = model
    m.eval()
    size = (128, 256) if name.startswith("dsfd") else (384, 512)
    with torch.no_grad():
        loc, conf = m(torch.zeros(1, 3, *size))
    assert loc.shape[1] == conf.shape[1] == m.priors(size).shape[0]


def test_too_small_input_is_a_clear_error_or_works(model):
    # SSD300-style trimming 3x3 convolutions need a minimum input; padded-only models take any size.
    name, m = model
    if name in ("ssd300_vgg16", "ssd_alexnet"):
        with pytest.raises(ValueError, match="too small"):
            m.priors((32, 32))
    else:
        assert m.priors((32, 32)).shape[0] > 0


def test_one_training_step(model):
    name, m = model
    m.train()
    h, w = _size(name, m)
    images = torch.randn(2, 3, h, w)
    boxes, labels, _, valid = pad_targets(
        [torch.tensor([[0.1, 0.2, 0.5, 0.6]]), torch.tensor([[0.3, 0.3, 0.9, 0.8], [0.0, 0.0, 0.2, 0.2]])],
        [torch.tensor([1]), torch.tensor([1, 1])],
    )
    optimizer = torch.optim.SGD(m.parameters(), lr=1e-4)
    before = [p.detach().clone() for p in m.head.parameters()]
    if hasattr(m, "forward_shots"):  # dual-shot models train both shots (PAL)
        grids = m.shot_prior_grids((h, w))
        total = sum(
            MultiBoxLoss()(loc, conf, match_priors(g, boxes, labels, valid)).total
            for (loc, conf), g in zip(m.forward_shots(images), grids)
        )
    else:
        total = MultiBoxLoss()(*m(images), match_priors(m.prior_grid((h, w)), boxes, labels, valid)).total
    assert torch.isfinite(total)
    total.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, m.head.parameters()))


def test_model_info_ssd300():
    info = model_info("ssd300_vgg16")
    assert info.num_priors == 8732 and info.input_size == (300, 300) and info.backbone == "vgg16"
    assert 25e6 < info.parameters < 28e6  # the tutorial's SSD300 has ~26.3 M parameters
    assert 55 < info.gflops < 70  # ~31 G multiply-adds at 300x300


def test_unknown_model_suggests_names():
    with pytest.raises(KeyError, match="ssd300_vgg16"):
        create_model("ssd300_vgg")


def test_landmark_branch_layers_keep_the_boxes_and_the_old_names():
    """``landmark_layers`` adds blocks to the landmark branch only: a checkpoint of the plain landmark head loads
    its box and score weights unchanged, and the branch's outputs keep the prior order of the boxes."""
    torch.manual_seed(0)
    plain = create_model("face_slim", width=0.25, landmarks=True).eval()
    deeper = create_model("face_slim", width=0.25, landmarks=True, landmark_layers=2).eval()
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("head.landm")}
    missing, unexpected = deeper.load_state_dict(state, strict=False)
    assert not unexpected and missing and all(k.startswith("head.landm") for k in missing)
    x = torch.rand(1, 3, 160, 192)
    with torch.no_grad():
        loc_a, conf_a, landm_a = plain(x)
        loc_b, conf_b, landm_b = deeper(x)
    assert torch.equal(loc_a, loc_b) and torch.equal(conf_a, conf_b)
    assert landm_b.shape == landm_a.shape == (1, loc_a.shape[1], 10)
    with pytest.raises(ValueError, match="landmark_layers"):
        create_model("face_slim", width=0.25, landmark_layers=1)
