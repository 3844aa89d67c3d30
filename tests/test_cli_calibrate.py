import json

import h5py
import numpy as np
import pytest

from atomlens.cli import main

SIM = ["simulate", "ronchigram", "--energy", "200e3", "--semiangle", "30", "--angular-sampling",
       "0.5", "--size", "160", "--dose", "1e7", "--seed", "4"]  # fmt: skip


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    for name, c10 in (("a.tif", "-300"), ("b.tif", "-100")):
        assert main([*SIM, "--C10", c10, "--C12", "60", "--phi12", "0.4", "-o",
                     str(folder / name)]) == 0  # fmt: skip
    return folder


def test_calibrate_prints_the_estimate_beside_the_truth(simulated, capsys):
    assert main(["calibrate", str(simulated / "a.tif"), "--truth"]) == 0
    out = capsys.readouterr().out
    assert "C10 (C1)" in out and "-30.00" in out  # the truth column, in nm
    assert "overall sign" in out


def test_calibrate_json_has_abtem_keys_with_uncertainties(simulated, capsys, tmp_path):
    target = tmp_path / "estimate.json"
    args = ["calibrate", str(simulated / "a.tif"), "--json", "-o", str(target)]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    for key in ("C10", "C10_std", "C12", "phi12", "C21", "C23", "C30_std", "sign_probability"):
        assert key in record
    assert abs(abs(record["C10"]) - 300) < 3 * record["C10_std"]
    assert json.loads(target.read_text()) == record
    assert main(args) == 2  # never overwrites
    assert "--overwrite" in capsys.readouterr().err


def test_calibrate_combines_a_defocus_pair(simulated, capsys):
    files = [str(simulated / "a.tif"), str(simulated / "b.tif")]
    assert main(["calibrate", *files, "--offsets", "0,20", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sign_resolved"] is True
    assert record["C10"] == pytest.approx(-300, abs=3 * record["C10_std"] + 10)


def test_calibrate_reads_a_simulated_dataset_in_one_go(tmp_path, capsys):
    dataset = tmp_path / "set.h5"
    args = [*SIM, "--count", "3", "--range", "C10=-400:-100", "--range", "C12=0:100",
            "--no-progress", "-o", str(dataset)]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["calibrate", str(dataset), "--json", "--truth", "--no-progress"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 3 and all("truth" in r for r in records)
    with h5py.File(dataset) as handle:
        assert handle["ronchigrams"].shape[0] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--energy", "300e3"], "trained at 200 kV"),
        (["--offsets", "0,x"], "comma-separated numbers"),
        (["--offsets", "0,1,2"], "3 values for 1"),
    ],
)
def test_calibrate_bad_input_gives_one_clear_line(simulated, capsys, extra, message):
    assert main(["calibrate", str(simulated / "a.tif"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_calibrate_without_calibration_names_the_missing_flags(tmp_path, capsys):
    image = tmp_path / "plain.npy"
    np.save(image, np.random.default_rng(0).random((64, 64)))
    assert main(["calibrate", str(image)]) == 2
    err = capsys.readouterr().err
    assert "--energy" in err and "--semiangle" in err and "--angular-sampling" in err
    assert main(["calibrate", str(tmp_path / "missing.tif")]) == 2
    assert "No such file" in capsys.readouterr().err
