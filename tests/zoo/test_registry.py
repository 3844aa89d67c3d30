import json

import pytest
import torch

from atomlens.nn import ResNet18Regressor
from atomlens.zoo import ModelNotFoundError, available_models, load_model, save_model


def test_save_and_load_round_trip(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = ResNet18Regressor(outputs=3, width=8).eval()
    folder = save_model(
        model,
        tmp_path / "tiny",
        arguments={"outputs": 3, "width": 8},
        card="# tiny\n",
        extra={"outputs": ["C10", "C12a", "C12b"]},
    )
    monkeypatch.setenv("ATOMLENS_MODELS", str(tmp_path))
    assert "tiny" in available_models()
    loaded, config = load_model("tiny")
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded(x))
    assert config["outputs"] == ["C10", "C12a", "C12b"] and not loaded.training
    assert load_model(folder)[1]["sha256"] == config["sha256"]


def test_corrupt_weights_and_unknown_names(tmp_path, monkeypatch):
    folder = save_model(
        ResNet18Regressor(width=8), tmp_path / "m", arguments={"width": 8}, card="# m\n"
    )
    with pytest.raises(FileExistsError):
        save_model(ResNet18Regressor(width=8), folder, arguments={"width": 8}, card="# m\n")
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        load_model(folder)
    monkeypatch.setenv("ATOMLENS_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="available: m"):
        load_model("nonexistent")


def _tiny(folder):
    return save_model(ResNet18Regressor(width=8), folder, arguments={"width": 8}, card="# m\n")


def test_weights_without_a_recorded_hash_are_never_loaded(tmp_path):
    folder = _tiny(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no SHA-256"):
        load_model(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON"):
        load_model(folder)


def test_a_user_model_that_hides_a_shipped_one_says_so(tmp_path, monkeypatch):
    _tiny(tmp_path / "ronchigram-aberrations")
    monkeypatch.setenv("ATOMLENS_MODELS", str(tmp_path))
    assert available_models()["ronchigram-aberrations"] == tmp_path / "ronchigram-aberrations"
    with pytest.warns(UserWarning, match="hides the shipped model"):
        load_model("ronchigram-aberrations")


def test_damaged_configs_and_weights_are_refused_before_allocating(tmp_path, monkeypatch):
    folder = _tiny(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())

    def rewrite(**changes):
        (folder / "config.json").write_text(json.dumps(config | changes))

    rewrite(arguments={"width": 200_000})  # about 1e12 parameters: sized on the meta device
    with pytest.raises(ValueError, match="more than the limit"):
        load_model(folder)
    rewrite(arguments={"width": 16})
    with pytest.raises(ValueError, match="does not fit architecture"):
        load_model(folder)
    rewrite(arguments={"wdith": 8})
    with pytest.raises(ValueError, match="do not build"):
        load_model(folder)
    state = {k: v.clone() for k, v in ResNet18Regressor(width=8).state_dict().items()}
    next(v for v in state.values() if v.is_floating_point()).fill_(float("nan"))
    nan_model = ResNet18Regressor(width=8)
    nan_model.load_state_dict(state)
    nan_folder = save_model(nan_model, tmp_path / "nan", arguments={"width": 8}, card="# m\n")
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        load_model(nan_folder)
