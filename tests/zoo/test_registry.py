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
