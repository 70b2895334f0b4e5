import pytest

from singleshot.config import ConfigError, dump_config, load_config


def test_overrides_are_typed():
    config = load_config(None, ["train.lr=0.05", "data.input_size=[240, 320]", "train.alpha_extra=2",
                                "model.options.width=0.5", "data.val={spec: 'csv:x'}", "train.grad_clip=null"])
    assert config.train.lr == 0.05 and config.data.input_size == (240, 320)
    assert config.train.alpha_extra == 2.0 and config.model.options == {"width": 0.5}
    assert config.data.val.spec == "csv:x" and config.train.grad_clip is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=1", "did you mean train.lr"),
        ("trian.lr=1", "did you mean train"),
        ("train.optimizer=adam", "did you mean 'adamw'"),
        ("train.epochs=1.5", "expected an integer"),
        ("train.channels_last=maybe", "expected true or false"),
        ("data.input_size=[1]", "expected 2 values"),
        ("train.lr", "expected section.key=value"),
        ("data.augment.blank_p=2", "blank_p must be in"),
        ("data.augment.grayscale_p=-0.1", "grayscale_p must be in"),
        ("data.augment.lowres_scale=[0.5,1.5]", "lowres_scale must be"),
        ("data.augment.face_crop_p=1.5", "face_crop_p must be in"),
        ("data.augment.face_crop_scale=[0,1]", "face_crop_scale must be"),
        ("data.augment.face_crop_canvas=0.5", "face_crop_canvas must be"),
        ("train.min_negatives_per_image=-1", "min_negatives_per_image must be"),
    ],
)
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_round_trip_and_file_errors(tmp_path):
    config = load_config(None, ["train.epochs=7"])
    dump_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml").train.epochs == 7
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match="did you mean train.epochs"):
        load_config(tmp_path / "typo.yaml")


def test_a_key_that_is_not_a_string_is_an_unknown_key_not_a_crash():
    from singleshot.config import config_from_dict

    with pytest.raises(ConfigError, match="unknown config key -1"):
        config_from_dict({-1: {"name": "face_slim"}})
