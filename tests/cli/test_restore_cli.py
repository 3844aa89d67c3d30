"""``atomlens restore``: files in, calibrated files out, nothing of the user's overwritten."""

import numpy as np
import pytest

from atomlens.cli import main
from atomlens.data import ImageSampler
from atomlens.io import read, write_tiff


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restore_cli")
    sample = ImageSampler(modality="haadf", size=96, realism=True).sample(0, 1_000_000)
    return write_tiff(folder / "input.tif", sample.image, pixel_size=0.2)


def test_restore_keeps_calibration_and_writes_a_plot(tmp_path, image_file):
    out, plot = tmp_path / "restored.tif", tmp_path / "before_after.png"
    code = main(["restore", str(image_file), "--modality", "haadf", "-o", str(out),
                 "--plot", str(plot)])  # fmt: skip
    assert code == 0 and plot.stat().st_size > 1000
    restored = read(out)
    assert restored.data.shape == read(image_file).data.shape
    assert restored.pixel_size == pytest.approx((0.2, 0.2))


def test_several_files_go_to_a_folder_and_hdf5_works(tmp_path, image_file):
    second = write_tiff(tmp_path / "second.tif", read(image_file).data[::-1].copy(), pixel_size=0.2)
    folder = tmp_path / "out"
    assert main(["restore", str(image_file), str(second), "--modality", "haadf", "--method",
                 "gaussian", "-o", str(folder)]) == 0  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["input_restored.tif", "second_restored.tif"]
    h5 = tmp_path / "restored.h5"
    assert main(["restore", str(image_file), "--modality", "haadf", "-o", str(h5)]) == 0
    assert read(h5).pixel_size == pytest.approx((0.2, 0.2))


def test_the_input_is_never_the_output(tmp_path, image_file, capsys):
    before = image_file.read_bytes()
    code = main(["restore", str(image_file), "--modality", "haadf", "-o", str(image_file),
                 "--overwrite"])  # fmt: skip
    assert code == 2 and "would replace the input" in capsys.readouterr().err
    assert image_file.read_bytes() == before


def test_bad_files_get_one_line_errors(tmp_path, capsys):
    constant = write_tiff(tmp_path / "flat.tif", np.ones((64, 64), np.float32))
    assert (
        main(["restore", str(constant), "--modality", "haadf", "-o", str(tmp_path / "o.tif")]) == 2
    )
    assert "flat.tif" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "missing.tif"), "--modality", "haadf", "-o",
                 str(tmp_path / "o.tif")]) == 2  # fmt: skip
    assert not (tmp_path / "o.tif").exists()


def test_the_wiener_step_is_on_by_default_and_can_be_left_out(tmp_path, image_file):
    from atomlens.restore import restore

    data = read(image_file).data
    for flags, expected in (([], restore(data)), (["--no-wiener-step"],
                                                  restore(data, wiener_step=False))):  # fmt: skip
        out = tmp_path / f"restored{len(flags)}.tif"
        assert main(["restore", str(image_file), "--modality", "haadf", "-o", str(out),
                     *flags]) == 0  # fmt: skip
        assert np.allclose(read(out).data, expected, rtol=1e-5, atol=1e-5 * np.ptp(expected))
    assert not np.allclose(restore(data), restore(data, wiener_step=False), rtol=1e-3)
