"""The built-in deep-learning networks: temporal layout of real feature labels, hyper-parameters, the
conformance check (on the built-ins and on broken networks), L-TAE's size against its reference architecture,
and learning a generated phenology problem (Sentinel-2 series from iota2.datagen)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pluggy
import pytest

torch = pytest.importorskip("torch")

from iota2.core import hookspecs  # noqa: E402
from iota2.core.errors import ConfigError, InputDataError  # noqa: E402
from iota2.datagen.sentinel2 import BANDS, simulate  # noqa: E402
from iota2.plugins import dl_models  # noqa: E402
from iota2.plugins.dl_models import (NETWORK_NAMES, check_dl_model, networks,  # noqa: E402
                                     resolve_hyper_parameters, temporal_layout)

#: a samples file's feature columns with Sentinel-1 and Sentinel-2 on different dates, user features, a
#: dated feature function (get_soi) and a dateless one (laplace_ndvi), in iota2's stacking order
MIXED_LABELS = (
    ["sentinel1_des_vv_20180509", "sentinel1_des_vh_20180509", "sentinel1_des_vv_20180521",
     "sentinel1_des_vh_20180521"]
    + [f"sentinel2_{band}_{date}" for date in ("20180511", "20180521") for band in ("b2", "b3", "b4")]
    + [f"sentinel2_ndvi_{date}" for date in ("20180511", "20180521")]
    + ["userfeatures_mnt", "userfeatures_slope_b1"]
    + ["soi_20180511", "soi_20180521", "laplace_ndvi"])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small networks run fastest on one thread, and the tests share the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dims(n_dates=12, n_channels=4, n_static=0):
    return {"n_dates": n_dates, "n_channels": n_channels, "doy": list(range(0, 10 * n_dates, 10)),
            "n_static": n_static}


# --- temporal layout -------------------------------------------------------------------------------------

def test_temporal_layout_of_mixed_sensors_and_functions():
    layout = temporal_layout(MIXED_LABELS)
    assert layout.dates == ("20180509", "20180511", "20180521")
    assert layout.channels == ("sentinel1_des_vh", "sentinel1_des_vv", "sentinel2_b2", "sentinel2_b3",
                               "sentinel2_b4", "sentinel2_ndvi", "soi")
    assert layout.static_labels == ("laplace_ndvi", "userfeatures_mnt", "userfeatures_slope_b1")
    np.testing.assert_array_equal(layout.doy, [0, 2, 12])  # days since 9 May 2018
    np.testing.assert_array_equal(layout.day_of_year, [129, 131, 141])
    position = {label: i for i, label in enumerate(MIXED_LABELS)}
    for d, date in enumerate(layout.dates):
        for c, channel in enumerate(layout.channels):
            label = f"{channel}_{date}"
            assert layout.index[d, c] == position.get(label, -1), label
            assert layout.mask[d, c] == (label in position)
    assert layout.mask.sum() + layout.n_static == layout.n_features == len(MIXED_LABELS)
    # Sentinel-1 only on 9 May, Sentinel-2 and soi only on 11 May, both on 21 May
    np.testing.assert_array_equal(layout.mask, [[1, 1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1], [1] * 7])

    values = np.arange(2 * len(MIXED_LABELS), dtype=np.float32).reshape(2, -1) + 1
    series, static = layout.split(values)
    assert series.shape == (2, 3, 7) and static.shape == (2, 3)
    assert series[1, 2, 6] == values[1, position["soi_20180521"]]
    assert series[0, 0, 2] == 0  # no Sentinel-2 on 9 May: filled with 0
    np.testing.assert_array_equal(static[:, 0], values[:, position["laplace_ndvi"]])


def test_temporal_layout_of_iota2_sentinel2_stack():
    """Bands date-major then each index for every date; dates sorted, channels by name (b2 before b11)."""
    dates = ["20180601", "20180101", "20180301"]
    labels = [f"sentinel2_{b}_{d}" for d in dates for b in ("b2", "b8", "b8a", "b11")] + \
        [f"sentinel2_{i}_{d}" for i in ("ndvi", "brightness") for d in dates] + ["sentinel2_b2_20181340"]
    layout = temporal_layout(labels)
    assert layout.dates == ("20180101", "20180301", "20180601")
    assert layout.channels == ("sentinel2_b2", "sentinel2_b8", "sentinel2_b8a", "sentinel2_b11",
                               "sentinel2_brightness", "sentinel2_ndvi")
    # a date that is not a valid day (month 13) leaves the label static
    assert layout.mask.all() and layout.static_labels == ("sentinel2_b2_20181340",)
    assert layout.index[0].tolist() == [4, 5, 6, 7, 16, 13]
    assert temporal_layout(labels[::-1]).channels == layout.channels


def test_temporal_layout_refuses_duplicates_and_no_features():
    with pytest.raises(InputDataError, match=r"learn\.sqlite: feature label\(s\) \['soi_20180511'\] appear"):
        temporal_layout(["soi_20180511", "sentinel2_b2_20180511", "soi_20180511"], source="learn.sqlite")
    with pytest.raises(InputDataError, match="no feature column"):
        temporal_layout([])


def test_networks_gather_by_label_whatever_the_column_order():
    """The same weights give the same logits when the columns and their labels are permuted together."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(MIXED_LABELS))
    first, second = temporal_layout(MIXED_LABELS), temporal_layout([MIXED_LABELS[i] for i in order])
    values = torch.as_tensor(rng.standard_normal((5, len(MIXED_LABELS))), dtype=torch.float32)
    for name, cls in networks().items():
        torch.manual_seed(0)
        model = cls.from_layout(first, 4).eval()
        permuted = cls.from_layout(second, 4).eval()
        permuted.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(permuted(values[:, order]), model(values), msg=name)
        if cls.temporal:
            series, static = model.split(values)
            expected_series, expected_static = first.split(values.numpy())
            np.testing.assert_array_equal(series.numpy(), expected_series)
            np.testing.assert_array_equal(static.numpy(), expected_static)


def test_positional_encoding_follows_the_real_days():
    """Two date grids with the same number of dates give different outputs: positions are days, not ranks."""
    x = torch.randn(3, 12 * 4)
    outputs = []
    for doy in (list(range(0, 120, 10)), list(range(0, 360, 30))):
        for name in ("LTAEClassifier", "SimpleSelfAttentionClassifier"):
            torch.manual_seed(0)
            model = networks()[name](12, 4, 3, doy).eval()
            with torch.no_grad():
                outputs.append(model(x))
    assert not torch.allclose(outputs[0], outputs[2]) and not torch.allclose(outputs[1], outputs[3])


# --- registration, import without torch, hyper-parameters --------------------------------------------------

def test_hook_registers_the_four_networks():
    manager = pluggy.PluginManager("iota2")
    manager.add_hookspecs(hookspecs)
    manager.register(dl_models)
    (registered,) = manager.hook.iota2_register_dl_models()
    assert tuple(registered) == NETWORK_NAMES
    assert all(issubclass(cls, torch.nn.Module) for cls in registered.values())
    assert dl_models.LTAEClassifier is registered["LTAEClassifier"]


def test_module_imports_without_torch():
    code = ("import sys\n"
            "import iota2.plugins.dl_models as m\n"
            "assert 'torch' not in sys.modules, 'dl_models imported torch'\n"
            "sys.modules['torch'] = None\n"  # torch missing from now on
            "assert m.iota2_register_dl_models() == {}\n"
            "try:\n"
            "    m.networks()\n"
            "except m.ConfigError as error:\n"
            "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install 'iota2[dl]'" in result.stdout


def test_unknown_hyper_parameter_lists_the_accepted_keys():
    with pytest.raises(ConfigError) as error:
        networks()["LTAEClassifier"](12, 4, 3, list(range(12)), n_heads=4)
    message = str(error.value)
    assert "deep_learning_parameters.dl_parameters: unknown key(s) n_heads for LTAEClassifier" in message
    for key in networks()["LTAEClassifier"].hyper_parameters:
        assert key in message
    assert "n_head (default 16)" in message


@pytest.mark.parametrize("name, params, match", [
    ("MLPClassifier", {"hidden_layers": "64"}, r"dl_parameters\.hidden_layers \(MLPClassifier\): expected a list"),
    ("MLPClassifier", {"dropout": 1.5}, r"dl_parameters\.dropout \(MLPClassifier\): expected a probability"),
    ("ANN", {"activation": "softsign"}, r"dl_parameters\.activation \(ANN\): expected one of tanh"),
    ("LTAEClassifier", {"n_head": 6}, r"dl_parameters\.n_head \(LTAEClassifier\): expected a divisor of d_model"),
    ("LTAEClassifier", {"d_model": 64}, r"n_neurons \(LTAEClassifier\): expected a list starting with d_model"),
    ("SimpleSelfAttentionClassifier", {"pooling": "max"}, r"\.pooling .*expected mean or cls"),
])
def test_bad_hyper_parameter_values(name, params, match):
    with pytest.raises(ConfigError, match=match):
        networks()[name](12, 4, 3, list(range(12)), **params)


def test_hyper_parameters_are_declared_with_docs_and_resolved():
    for cls in networks().values():
        assert cls.hyper_parameters and all(isinstance(doc, str) and doc for _, doc in cls.hyper_parameters.values())
    resolved = resolve_hyper_parameters(networks()["MLPClassifier"], {"hidden_layers": [32, 16]})
    assert resolved == {"hidden_layers": (32, 16), "dropout": 0.2, "batch_norm": True}
    model = networks()["MLPClassifier"](12, 4, 3, list(range(12)), hidden_layers=[32, 16])
    assert [m.out_features for m in model.layers if isinstance(m, torch.nn.Linear)] == [32, 16, 3]


def test_temporal_networks_need_dated_features():
    layout = temporal_layout(["userfeatures_mnt", "laplace_ndvi"])
    with pytest.raises(ConfigError, match="LTAEClassifier reads time series.*use MLPClassifier or ANN"):
        networks()["LTAEClassifier"].from_layout(layout, 3)
    check_dl_model(networks()["MLPClassifier"], layout, 3)


def test_wrong_input_width_is_refused():
    model = networks()["MLPClassifier"](12, 4, 3, list(range(12)), n_static=2)
    with pytest.raises(ValueError, match=r"expected a \(batch, 50\) tensor"):
        model(torch.zeros(2, 48))


# --- conformance -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_check_dl_model_passes_on_builtins(name):
    cls = networks()[name]
    check_dl_model(cls, _dims(n_static=2), 5)
    check_dl_model(cls, temporal_layout(MIXED_LABELS), 3)


class _Linear(torch.nn.Module):
    """A network of the convention (hyper-parameters checked), broken in subclasses."""

    hyper_parameters: dict = {}

    def __init__(self, n_dates, n_channels, n_classes, doy, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__()
        resolve_hyper_parameters(type(self), hyper_parameters)
        n_features = layout.n_features if layout is not None else n_dates * n_channels + n_static
        self.linear = torch.nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.linear(x)


class _WrongSize(_Linear):
    def forward(self, x):
        return torch.cat([self.linear(x), x[:, :1]], dim=1)


class _DropoutAtEval(_Linear):
    def forward(self, x):
        return self.linear(torch.nn.functional.dropout(x, 0.5, training=True))


class _NaN(_Linear):
    def forward(self, x):
        return self.linear(x) * torch.tensor(float("nan"))


class _AcceptsAnything(_Linear):
    def __init__(self, n_dates, n_channels, n_classes, doy, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__(n_dates, n_channels, n_classes, doy, n_static, layout=layout)


class _BatchStatistics(_Linear):
    def forward(self, x):
        return self.linear(x - x.mean(dim=0))


class _UnseededInit(_Linear):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(np.random.default_rng().standard_normal(
                self.linear.weight.shape).astype(np.float32)))


def test_check_dl_model_passes_on_a_plain_network():
    check_dl_model(_Linear, _dims(), 3)


@pytest.mark.parametrize("cls, point", [
    (_WrongSize, r"\(3\) output shape: expected \(8, 3\) logits for 48 features, got \(8, 4\)"),
    (_DropoutAtEval, r"\(5\) two forward passes in eval mode differ"),
    (_NaN, r"\(4\) outputs are not finite"),
    (_AcceptsAnything, r"\(2\) an unknown hyper-parameter must raise ConfigError; it was accepted"),
    (_BatchStatistics, r"\(8\) batch size 1"),
    (_UnseededInit, r"\(6\) two constructions with the same seed"),
])
def test_check_dl_model_names_the_failed_point(cls, point):
    with pytest.raises(AssertionError, match=point):
        check_dl_model(cls, _dims(), 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_networks_run_on_the_gpu(name):
    model = networks()[name].from_layout(temporal_layout(MIXED_LABELS), 3).to("cuda").eval()
    x = torch.randn(4, len(MIXED_LABELS))
    with torch.no_grad():
        on_gpu = model(x.to("cuda"))
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), model.cpu()(x), rtol=1e-3, atol=1e-4)


# --- L-TAE against the reference architecture --------------------------------------------------------------

def test_ltae_size_with_the_reference_hyper_parameters():
    """torchgeo's ``LTAE`` defaults (those of the paper's code): in_channels 128, n_head 16, d_k 8,
    n_neurons (256, 128), d_model 256, T 1000, len_max_seq 24.

    Trainable parameters of the paper's L-TAE encoder with these values:
      input LayerNorm(128)                          2*128            =    256
      1x1 projection 128 -> 256                     128*256 + 256    = 33,024
      LayerNorm over (24 dates, 256)                2*24*256         = 12,288
      master queries (16 heads x d_k 8)             16*8             =    128
      keys Linear(256 -> 16*8)                      256*128 + 128    = 32,896
      MLP Linear(256 -> 128) + BatchNorm1d(128)     256*128+128 + 2*128 = 33,152
      output LayerNorm(128)                         2*128            =    256
                                                                 total = 112,000
    (the positional encoding is a fixed table, not a parameter). torchgeo's module counts 342,144: it keeps
    these layers but replaces the master-query attention by a full nn.MultiheadAttention(256, 16) with Q, K, V
    and output projections (4*256*256 + 4*256 = 263,168 instead of 128 + 32,896) and mean-pools the dates.
    Our decoder for 20 classes: Linear(128 -> 64) + BN(64) + Linear(64 -> 32) + BN(32) + Linear(32 -> 20)
      = 8,256 + 128 + 2,080 + 64 + 660 = 11,188.
    """
    model = networks()["LTAEClassifier"](24, 128, 20, list(range(0, 240, 10)), d_model=256, n_head=16, d_k=8,
                                         n_neurons=[256, 128], dropout=0.2, T=1000)

    def count(module):
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    assert count(model.encoder) == 112_000
    assert count(model.decoder) == 11_188
    assert count(model) == 123_188
    model.eval()
    with torch.no_grad():
        assert model.encoder(torch.randn(3, 24, 128)).shape == (3, 128)
        assert model(torch.randn(3, 24 * 128)).shape == (3, 20)


# --- learning a generated problem --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def phenology_samples():
    """600 Sentinel-2 pixels of three classes (maize, sunflower, grassland) over 12 dates: B4, B8, B11
    reflectances date-major then NDVI per date (iota2's stack order), plus one uninformative static feature;
    standardised with the statistics of the 400 learning samples; 200 held-out samples."""
    dates = [f"2018{month:02d}15" for month in range(1, 13)]
    scene = simulate(tiles=("T31TCJ",), size=64, dates=dates, seed=3, cloud_fraction=0.0)
    usable = np.ones(scene.class_map.shape, dtype=bool)
    for date in dates:
        usable &= ~scene.saturated[date]
        if scene.edge[date] is not None:
            usable &= ~scene.edge[date]
    rng = np.random.default_rng(0)
    bands = [BANDS.index(band) for band in ("B4", "B8", "B11")]
    rows, labels = [], []
    for target, label in enumerate(CLASSES_USED):
        where = np.flatnonzero((scene.class_map == label) & usable)
        picked = rng.choice(where, 200, replace=False)
        r, c = np.unravel_index(picked, scene.class_map.shape)
        cube = np.stack([scene.ground[date][bands][:, r, c].T for date in dates], axis=1)  # (n, dates, 3)
        ndvi = (cube[:, :, 1] - cube[:, :, 0]) / (cube[:, :, 1] + cube[:, :, 0]) * 1000
        static = rng.standard_normal((len(picked), 1))
        rows.append(np.concatenate([cube.reshape(len(picked), -1), ndvi, static], axis=1))
        labels.append(np.full(len(picked), target))
    x, y = np.concatenate(rows).astype(np.float32), np.concatenate(labels)
    feature_labels = [f"sentinel2_{band}_{date}" for date in dates for band in ("b4", "b8", "b11")] + \
        [f"sentinel2_ndvi_{date}" for date in dates] + ["userfeatures_mnt"]
    order = rng.permutation(len(y))
    learn, test = order[:400], order[400:]
    mean, std = x[learn].mean(axis=0), x[learn].std(axis=0) + 1e-6
    x = (x - mean) / std
    return temporal_layout(feature_labels), torch.as_tensor(x[learn]), torch.as_tensor(y[learn]), \
        torch.as_tensor(x[test]), torch.as_tensor(y[test])


#: land-cover classes of iota2.datagen.sentinel2 learnt: maize, sunflower (a deliberately close pair) and grassland
CLASSES_USED = (5, 6, 7)
#: (hyper-parameters, learning rate) of each network on the generated problem: small networks, 8 epochs
TRAINING = {"MLPClassifier": ({"hidden_layers": [64, 32]}, 3e-3),
            "ANN": ({"hidden_size": 32}, 1e-2),
            "LTAEClassifier": ({"d_model": 32, "n_head": 4, "d_k": 8, "n_neurons": [32, 16], "decoder": [16]}, 3e-3),
            "SimpleSelfAttentionClassifier": ({"d_model": 16, "n_head": 2, "n_layers": 1, "dim_feedforward": 32},
                                              3e-3)}


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_network_learns_separable_phenologies(name, phenology_samples):
    layout, x, y, x_test, y_test = phenology_samples
    assert layout.n_dates == 12 and layout.n_channels == 4 and layout.n_static == 1
    hyper_parameters, rate = TRAINING[name]
    torch.manual_seed(0)
    model = networks()[name].from_layout(layout, 3, **hyper_parameters)
    model.eval()
    with torch.no_grad():
        before = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    optimiser = torch.optim.Adam(model.parameters(), lr=rate)
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        model.train()
        for batch in torch.randperm(len(y), generator=generator).split(50):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    assert before < 0.6, f"{name}: {before:.3f} held-out accuracy before learning: the problem is too easy"
    assert accuracy >= 0.9, f"{name}: held-out accuracy {accuracy:.3f} (before learning {before:.3f})"


def test_docs_list_every_hyper_parameter_with_its_default():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "deep_learning.md").read_text()
    assert doc.startswith("# ") and "\n## Networks\n" in doc

    def shown(value):
        if isinstance(value, tuple):
            return str(list(value))
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer() and value >= 100:
            return str(int(value))
        return str(value)

    for name, cls in networks().items():
        section = doc.split(f"\n### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        for key, (default, _) in cls.hyper_parameters.items():
            assert f"| `{key}` | `{shown(default)}` |" in section, f"{name}.{key} = {default!r} in the docs"


def test_ltae_attention_is_the_paper_s_master_query_against_the_keys():
    """The encoder folds each head's master query into the key weights; its output is the paper's formula."""
    import math

    from iota2.plugins.dl_networks import LTAEClassifier

    torch.manual_seed(0)
    doy = torch.tensor([5.0, 40.0, 90.0, 150.0])
    encoder = LTAEClassifier(4, 6, 3, doy, d_model=32, n_head=4, d_k=5, n_neurons=[32, 16]).eval().encoder
    series = torch.randn(7, 4, 6)
    with torch.no_grad():
        h = encoder.projection_norm(encoder.in_projection(encoder.in_norm(series))) + encoder.positional_encoding
        keys = encoder.key(h).view(7, 4, 4, 5)  # (batch, dates, heads, d_k)
        scores = torch.einsum("bthk,hk->bht", keys, encoder.query) / math.sqrt(5)
        attention = torch.softmax(scores, dim=-1)
        heads = torch.einsum("bht,bthv->bhv", attention, h.view(7, 4, 4, 8)).reshape(7, 32)
        expected = encoder.out_norm(encoder.mlp(heads))
        torch.testing.assert_close(encoder(series), expected, rtol=1e-5, atol=1e-5)


def test_temporal_layout_of_object_statistics():
    """OBIA's features, ``<label>_<statistic>``: each statistic of a dated band is a channel at that date."""
    labels = ["sentinel2_b2_20180521_std", "sentinel2_b2_20180511_mean", "sentinel2_b2_20180511_std",
              "sentinel2_b2_20180521_mean", "userfeatures_mnt_mean", "sentinel2_b2_20180511_median"]
    layout = temporal_layout(labels)
    assert layout.dates == ("20180511", "20180521")
    assert layout.channels == ("sentinel2_b2_mean", "sentinel2_b2_std")
    assert layout.index.tolist() == [[1, 2], [3, 0]]
    # not a statistic of the list: a static feature, as any label that does not end in a date
    assert layout.static_labels == ("sentinel2_b2_20180511_median", "userfeatures_mnt_mean")
