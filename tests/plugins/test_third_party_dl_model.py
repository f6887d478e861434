"""The example network package in examples/ (TempCNN) is pip-installed, found in the registry of networks, passes
check_dl_model, and trains and classifies through the whole chain selected by its name only; the registry of
networks refuses a name registered twice and forgets what is uninstalled."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")

from example_packages import installed_example  # noqa: E402

from iota2.cli import main  # noqa: E402
from iota2.core.errors import ConfigError, PluginError  # noqa: E402
from iota2.core.plugins import dl_models, get_plugin_manager, refresh_plugins  # noqa: E402
from iota2.plugins.dl_learner import network_class, registered_networks  # noqa: E402
from iota2.plugins.dl_models import check_dl_model, temporal_layout  # noqa: E402

LABELS = ([f"sentinel2_{band}_{date}" for date in ("20180105", "20180304", "20180511", "20180716")
           for band in ("b2", "b4", "b8", "ndvi")] + ["sentinel1_des_vv_20180110", "userfeatures_mnt"])


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread per task (the networks of these tests are too small for more)."""
    from iota2.core.scheduler import THREADS_ENV

    monkeypatch.setenv(THREADS_ENV, "1")


@pytest.fixture(scope="module")
def installed_tempcnn():
    assert "TempCNNClassifier" not in registered_networks()
    with installed_example("iota2-tempcnn-model", "iota2-tempcnn-model", "iota2_tempcnn_model"):
        yield
    assert "TempCNNClassifier" not in registered_networks()  # refresh_plugins forgot the uninstalled network


def test_tempcnn_is_registered_and_passes_check_dl_model(installed_tempcnn):
    networks = dl_models()
    tempcnn = networks["TempCNNClassifier"]
    assert tempcnn.__module__ == "iota2_tempcnn_model.network"
    assert {"MLPClassifier", "ANN", "LTAEClassifier", "SimpleSelfAttentionClassifier"} <= set(networks)
    assert registered_networks() is networks and network_class("TempCNNClassifier") is tempcnn
    layout = temporal_layout(LABELS)  # 5 dates (Sentinel-1 and -2), 5 channels, one static feature
    model = check_dl_model(tempcnn, layout, 4)
    assert model.hparams == {"n_conv": 3, "n_filters": 32, "kernel_size": 5, "hidden_size": 64, "dropout": 0.2}
    check_dl_model(tempcnn, (7, 3, np.arange(7, dtype=np.float32) * 10), 2,
                   hyper_parameters={"n_conv": 1, "n_filters": 8, "kernel_size": 3, "hidden_size": 16, "dropout": 0})
    with pytest.raises(ConfigError, match=r"dl_parameters\.dropout \(TempCNNClassifier\): expected a probability"):
        tempcnn.from_layout(layout, 3, dropout=1.5)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) filters for TempCNNClassifier; accepted keys: n_conv"):
        tempcnn.from_layout(layout, 3, filters=8)
    with pytest.raises(ConfigError, match=r"TempCNNClassifier reads time series, but the samples have no dated"):
        tempcnn.from_layout(temporal_layout(["userfeatures_mnt", "userfeatures_slope"]), 3)


def test_listed_by_iota2_plugins(installed_tempcnn, capsys):
    assert main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert "tempcnn_model" in listing and "iota2-tempcnn-model 0.1.0" in listing
    assert "dl_model:TempCNNClassifier" in listing


@pytest.mark.slow
def test_chain_with_the_installed_network(installed_tempcnn, make_config, tmp_path):
    """No path in the configuration: dl_name alone selects the installed network."""
    config = make_config(arg_train={"deep_learning_parameters": {"dl_name": "TempCNNClassifier", "epochs": 3}})
    assert "examples" not in config.read_text() and "dl_module" not in config.read_text()
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    out = tmp_path / "out"
    final = out / "final"
    for name in ("Classif_Seed_0.tif", "Confidence_Seed_0.tif", "Classif_Seed_0_ColorIndexed.tif", "RESULTS.txt"):
        assert (final / name).stat().st_size > 0, name
    summary = json.loads((out / "model" / "model_1_seed_0.json").read_text())
    assert summary["learner"] == "deep_learning" and summary["settings"]["dl_name"] == "TempCNNClassifier"
    description = json.loads((out / "model" / "model_1_seed_0_dl.json").read_text())
    assert description["hyper_parameters"]["n_filters"] == 32
    rows = list(csv.DictReader(open(out / "model" / "model_1_seed_0_learning_curves.csv")))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    with rasterio.open(final / "Classif_Seed_0.tif") as source:
        labels = set(np.unique(source.read(1)).tolist()) - {0}
    assert labels and labels <= set(description["classes"])
    oa = [line for line in (final / "RESULTS.txt").read_text().splitlines() if line.startswith("OA :")]
    assert oa and 0.0 < float(oa[0].split()[2]) <= 1.0


def test_registry_refuses_a_name_registered_twice_and_is_rebuilt_by_refresh():
    import types

    from iota2.core.hookspecs import hookimpl

    plugin = types.ModuleType("other_networks")  # a second, different class under a built-in network's name
    plugin.iota2_register_dl_models = hookimpl(
        lambda: {"MLPClassifier": type("MLPClassifier", (torch.nn.Module,), {})})
    manager = get_plugin_manager()
    manager.register(plugin, name="other_networks")
    dl_models.cache_clear()
    try:
        with pytest.raises(PluginError, match="two plugins register the network 'MLPClassifier'; uninstall one"):
            dl_models()
        with pytest.raises(PluginError, match="'MLPClassifier'"):
            network_class("MLPClassifier")
    finally:
        manager.unregister(plugin)
        refresh_plugins()
    assert dl_models()["MLPClassifier"].__module__ == "iota2.plugins.dl_networks"


def test_module_file_errors_name_the_key_that_names_the_file(tmp_path):
    """load_module's messages name the configuration key and what the file defines (dl_module or external_features)."""
    from iota2.core.feature_functions import load_module
    from iota2.plugins.dl_learner import module_networks

    missing, text, broken = tmp_path / "absent.py", tmp_path / "nets.txt", tmp_path / "broken.py"
    text.write_text("")
    broken.write_text("import torch\n\nclass Net(torch.nn.Module:\n    pass\n")
    key = r"^arg_train\.deep_learning_parameters\.dl_module: "
    with pytest.raises(ConfigError, match=key + r".*absent\.py does not exist; give the absolute path of the \.py "
                                                r"file defining your networks$"):
        module_networks(missing)
    with pytest.raises(ConfigError, match=key + r".*nets\.txt is not a Python file; give the path of a \.py file "
                                                r"defining your networks$"):
        module_networks(text)
    with pytest.raises(ConfigError, match=key + r".*broken\.py failed to import \(line 3\): SyntaxError"):
        module_networks(broken)
    with pytest.raises(ConfigError, match=r"^external_features\.module: .*absent\.py does not exist; give the "
                                          r"absolute path of the \.py file defining your feature functions$"):
        load_module(missing)
