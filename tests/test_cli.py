"""Command line: demo, plugins listing, configuration reference, exit codes."""

import subprocess
import sys

from iota2.cli import main


def test_demo_runs_the_whole_chain(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "100", "-scheduler_type", "debug",
                 "-no_progress"]) == 0
    final = tmp_path / "demo" / "output" / "final"
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif",
                 "PixelsValidity.tif", "RESULTS.txt", "Confusion_Matrix_Classif_Seed_0.png", "Classif_Seed_1.tif"):
        assert (final / name).stat().st_size > 0
    oa = [line for line in (final / "RESULTS.txt").read_text().splitlines() if line.startswith("OA :")]
    assert oa and 0.7 < float(oa[0].split()[2]) <= 1.0


def test_config_reference_command(tmp_path):
    target = tmp_path / "ref.md"
    assert main(["config-reference", "-o", str(target)]) == 0
    assert "## `arg_train`" in target.read_text()


def test_console_script_exit_code_and_single_line_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("chain:\n  output_path: /tmp/x\n  list_tile: T1\n  s2_path: /nonexistent\narg_train:\n"
                      "  ratoi: 0.3\n")
    result = subprocess.run([sys.executable, "-m", "iota2.cli", "-config", str(config)], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(f"iota2: error: {config}: unknown key 'arg_train.ratoi'; did you mean 'ratio'?")
    assert len(result.stderr.strip().splitlines()) == 1
