"""`minicnn experiment downsampling` prints within 80 columns (issue 25: it printed 102-131)."""

from minicnn.cli import main


def test_downsampling_output_fits_80_columns(data_dir, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["experiment", "downsampling", "--out", str(out), "--data-dir", str(data_dir),
                 "--num-images", "4"]) == 0
    printed = capsys.readouterr().out
    wide = [line for line in printed.splitlines() if len(line) > 80 and str(out) not in line]
    assert not wide, wide
    assert "mnist (4):" in printed and "slicing (space-to-depth)" in printed and "bilinear" in printed
