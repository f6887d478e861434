"""The whole classification chain on the generated Sentinel-2 tiles with OTB's random forest
(arg_train.classifier: rf): the final map holds the ground truth's classes, RESULTS.txt an OA well above chance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from otb_testing import require_otb

from iota2.cli import main


@pytest.mark.slow
def test_chain_with_otb_random_forest(make_config, tmp_path, s2_dataset):
    require_otb()
    config = make_config(arg_train={"classifier": "rf", "otb_classifier_options": {"classifier.rf.nbtrees": 50,
                                                                                    "classifier.rf.max": 15}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "model" / "model_1_seed_0.json").read_text())
    assert summary["learner"] == "otb" and summary["settings"]["classifier"] == "rf"
    assert (out / "model" / "model_1_seed_0.txt").read_text().count("ntrees: 50") == 1
    truth = {int(line.split(":")[1]) for line in Path(s2_dataset["nomenclature"]).read_text().splitlines()
             if ":" in line}
    with rasterio.open(out / "final" / "Classif_Seed_0.tif") as source:
        labels = set(np.unique(source.read(1)).tolist()) - {0}
    assert labels and labels <= truth and len(labels) >= len(summary["classes"]) - 1
    with rasterio.open(out / "final" / "Confidence_Seed_0.tif") as source:
        confidence = source.read(1)
    assert confidence.max() <= 100 and confidence.max() > 50
    results = (out / "final" / "RESULTS.txt").read_text()
    overall = float(re.search(r"OA\s*:\s*([0-9.]+)", results).group(1))
    overall = overall / 100 if overall > 1 else overall
    assert overall > 2.0 / len(summary["classes"]), results


def test_chain_without_otb_fails_at_start_with_the_install_command(make_config, tmp_path):
    import os
    import subprocess
    import sys

    config = make_config(arg_train={"classifier": "rf"})
    env = dict(os.environ, IOTA2_OTB_BUILD_DIR=str(tmp_path / "no_binding"), OTB_APPLICATION_PATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "iota2.cli", "-config", str(config), "-scheduler_type", "debug",
                             "-no_progress"], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2, result.stderr
    message = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(message) == 1, result.stderr
    assert "arg_train.classifier = 'rf' needs OTB" in message[0]
    assert "apt-get install otb-bin libotb-dev, then iota2 otb build" in message[0]
    assert "scikit_models_parameters: {model_type: RandomForestClassifier}" in message[0]
    assert not (tmp_path / "out").exists()
