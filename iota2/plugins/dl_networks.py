"""The built-in deep-learning networks (torch); registered and documented by :mod:`iota2.plugins.dl_models`.

Imported on first use only (it imports torch). Every network follows the constructor convention of
:mod:`iota2.plugins.dl_models`::

    Network(n_dates, n_channels, n_classes, doy, n_static=0, *, layout=None, **hyper_parameters)

declares its hyper-parameters in ``hyper_parameters = {key: (default, doc)}``, takes (batch, n_features) flat
feature vectors and returns logits (batch, n_classes). Nothing is tied to a device: inputs must be on the
device of the parameters (``model.to(device)``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from iota2.core.errors import ConfigError
from iota2.plugins.dl_models import TemporalLayout, resolve_hyper_parameters

__all__ = ["DLNetwork", "MLPClassifier", "ANN", "LTAEClassifier", "SimpleSelfAttentionClassifier",
           "sinusoid_encoding"]


def sinusoid_encoding(positions: torch.Tensor, dim: int, period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal encoding of real positions (Vaswani et al. 2017, with days as positions as in L-TAE).

    ``encoding[t, 2i] = sin(p_t / period ** (2i / dim))`` and ``encoding[t, 2i + 1] = cos(...)`` with the same
    angle.

    Parameters
    ----------
    positions
        (n,) float positions, e.g. days since the first date.
    dim
        Size of the encoding.
    period
        ``T`` of the formula (1000 in L-TAE).

    Returns
    -------
    torch.Tensor
        (n, dim) float32.
    """
    positions = positions.to(torch.float32)
    i = torch.arange(dim, dtype=torch.float32, device=positions.device)
    angle = positions[:, None] / torch.pow(torch.tensor(float(period), device=positions.device),
                                           2.0 * torch.div(i, 2, rounding_mode="floor") / dim)
    return torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))


def _check(network: str, key: str, ok: bool, expected: str, value) -> None:
    if not ok:
        raise ConfigError(f"deep_learning_parameters.dl_parameters.{key} ({network}): expected {expected}, "
                          f"got {value!r}")


class DLNetwork(nn.Module):
    """Base of the built-in networks: dimensions, hyper-parameters and the gathering of the flat vector.

    Parameters
    ----------
    n_dates, n_channels
        Size of the time series: (dates, channels).
    n_classes
        Number of classes (size of the logits).
    doy
        (n_dates,) day of year, or days since the first date, of each date (the layout's ``doy``).
    n_static
        Number of dateless features.
    layout
        The :class:`iota2.plugins.dl_models.TemporalLayout` of the samples' feature labels; without it the flat
        vector is a complete date-major series followed by the static features.
    **hyper_parameters
        Keys of the class's ``hyper_parameters``; an unknown key raises :class:`iota2.core.errors.ConfigError`.

    Attributes
    ----------
    hparams : dict
        Every hyper-parameter with its value.
    n_features : int
        Length of the flat vectors ``forward`` takes.
    """

    #: ``{key: (default, doc)}``
    hyper_parameters: dict = {}
    #: the network reads (batch, dates, channels) series (it needs at least one dated feature)
    temporal: bool = False

    def __init__(self, n_dates: int, n_channels: int, n_classes: int, doy=None, n_static: int = 0, *,
                 layout: TemporalLayout | None = None, **hyper_parameters):
        super().__init__()
        name = type(self).__name__
        self.hparams = resolve_hyper_parameters(type(self), hyper_parameters)
        if layout is not None:
            if (n_dates, n_channels, n_static) != (layout.n_dates, layout.n_channels, layout.n_static):
                raise ValueError(f"{name}: n_dates, n_channels, n_static = {(n_dates, n_channels, n_static)} "
                                 f"differ from the layout's {(layout.n_dates, layout.n_channels, layout.n_static)}")
            if doy is None:
                doy = layout.doy
        for key, value, low in (("n_dates", n_dates, 0), ("n_channels", n_channels, 0), ("n_classes", n_classes, 1),
                                ("n_static", n_static, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}: {key} must be an integer >= {low}, got {value!r}")
        if self.temporal and (n_dates < 1 or n_channels < 1):
            raise ConfigError(f"deep_learning_parameters.dl_name: {name} reads time series, but the samples have "
                              f"no dated feature (labels ending in _YYYYMMDD); use MLPClassifier or ANN")
        doy = np.arange(n_dates, dtype=np.float32) if doy is None else np.asarray(doy, dtype=np.float32)
        if doy.shape != (n_dates,):
            raise ValueError(f"{name}: doy must hold one value per date ({n_dates}), got shape {doy.shape}")
        self.n_dates, self.n_channels, self.n_classes, self.n_static = (int(n_dates), int(n_channels),
                                                                       int(n_classes), int(n_static))
        if layout is not None:
            self.n_features = layout.n_features
            gather = np.where(layout.mask, layout.index, layout.n_features).reshape(-1)
            static = layout.static
            self._pad = not bool(layout.mask.all())
            flat = np.concatenate([layout.index[layout.mask], static])
        else:
            self.n_features = self.n_dates * self.n_channels + self.n_static
            gather = np.arange(self.n_dates * self.n_channels)
            static = np.arange(self.n_dates * self.n_channels, self.n_features)
            self._pad = False
            flat = np.arange(self.n_features)
        self.register_buffer("gather_index", torch.as_tensor(gather, dtype=torch.long), persistent=False)
        self.register_buffer("static_index", torch.as_tensor(static, dtype=torch.long), persistent=False)
        self.register_buffer("flat_index", torch.as_tensor(flat, dtype=torch.long), persistent=False)
        self.register_buffer("doy", torch.as_tensor(doy, dtype=torch.float32), persistent=False)

    @classmethod
    def from_layout(cls, layout: TemporalLayout, n_classes: int, **hyper_parameters) -> DLNetwork:
        """The network for the feature labels of ``layout``."""
        return cls(layout.n_dates, layout.n_channels, n_classes, layout.doy, layout.n_static, layout=layout,
                   **hyper_parameters)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is (batch, n_features)."""
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"{type(self).__name__}: expected a (batch, {self.n_features}) tensor of features, "
                             f"got shape {tuple(x.shape)}")

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_features): the features in the layout's order, whatever the order of the columns: the
        (date, channel) pairs date by date (channels in layout order, missing pairs left out), then the static
        features."""
        self.check_input(x)
        return x[:, self.flat_index]

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(series, static)``: (batch, n_dates, n_channels), 0 for missing pairs, and (batch, n_static)."""
        self.check_input(x)
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1) if self._pad else x
        series = padded[:, self.gather_index].reshape(x.shape[0], self.n_dates, self.n_channels)
        return series, x[:, self.static_index]

    def extra_repr(self) -> str:
        return (f"n_dates={self.n_dates}, n_channels={self.n_channels}, n_static={self.n_static}, "
                f"n_classes={self.n_classes}")


def _dense_block(n_in: int, n_out: int, batch_norm: bool, activation: nn.Module, dropout: float) -> list:
    layers = [nn.Linear(n_in, n_out)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(activation)
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


class MLPClassifier(DLNetwork):
    """Multi-layer perceptron on the flat feature vector (every feature, dated or not, in the layout's order).

    Each hidden layer is Linear, BatchNorm1d (``batch_norm``), ReLU, Dropout (``dropout``); the output layer
    is Linear to ``n_classes`` logits.
    """

    hyper_parameters = {
        "hidden_layers": ((256, 128), "sizes of the hidden layers"),
        "dropout": (0.2, "dropout probability after each hidden layer (0 for none)"),
        "batch_norm": (True, "batch normalisation after each hidden linear layer"),
    }

    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__(n_dates, n_channels, n_classes, doy, n_static, layout=layout, **hyper_parameters)
        hp = self.hparams
        _check(type(self).__name__, "dropout", 0.0 <= hp["dropout"] < 1.0, "a probability in [0, 1)", hp["dropout"])
        layers, size = [], self.n_features
        for width in hp["hidden_layers"]:
            layers += _dense_block(size, width, hp["batch_norm"], nn.ReLU(), hp["dropout"])
            size = width
        layers.append(nn.Linear(size, self.n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of (batch, n_features) features."""
        return self.layers(self.flat(x))


class ANN(DLNetwork):
    """Artificial neural network: a perceptron with one hidden layer on the flat feature vector (layout order).

    Linear, activation (``tanh`` by default, like the symmetric sigmoid of OTB's ``ann``), Linear to
    ``n_classes`` logits; no normalisation layer.
    """

    hyper_parameters = {
        "hidden_size": (128, "neurons of the hidden layer"),
        "activation": ("tanh", "activation of the hidden layer: tanh, sigmoid or relu"),
        "dropout": (0.0, "dropout probability after the hidden layer (0 for none)"),
    }
    _activations = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}

    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__(n_dates, n_channels, n_classes, doy, n_static, layout=layout, **hyper_parameters)
        hp, name = self.hparams, type(self).__name__
        _check(name, "hidden_size", hp["hidden_size"] >= 1, "a positive integer", hp["hidden_size"])
        _check(name, "activation", hp["activation"] in self._activations, "one of tanh, sigmoid, relu",
               hp["activation"])
        _check(name, "dropout", 0.0 <= hp["dropout"] < 1.0, "a probability in [0, 1)", hp["dropout"])
        self.layers = nn.Sequential(*_dense_block(self.n_features, hp["hidden_size"], False,
                                                  self._activations[hp["activation"]](), hp["dropout"]),
                                    nn.Linear(hp["hidden_size"], self.n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of (batch, n_features) features."""
        return self.layers(self.flat(x))


class LTAEEncoder(nn.Module):
    """Lightweight Temporal Attention Encoder (Sainte Fare Garnot & Landrieu 2020): series to one embedding.

    (batch, dates, in_channels) -> LayerNorm(in_channels) -> 1x1 projection to ``d_model`` -> LayerNorm over
    (dates, d_model) -> + positional encoding of the real days (sinusoid of size d_model / n_head, repeated
    for every head) -> per head: a learnt master query (d_k) against keys Linear(d_model, n_head * d_k),
    softmax over dates scaled by sqrt(d_k), attention dropout, weighted sum of that head's d_model / n_head
    input channels -> heads concatenated (d_model) -> MLP (Linear, BatchNorm1d, ReLU per step of ``n_neurons``)
    -> Dropout -> LayerNorm(n_neurons[-1]).
    """

    def __init__(self, in_channels: int, n_dates: int, doy: torch.Tensor, *, n_head: int, d_k: int,
                 d_model: int | None, n_neurons: tuple, dropout: float, attention_dropout: float, period: float):
        super().__init__()
        self.n_head, self.d_k = n_head, d_k
        self.d_model = in_channels if d_model is None else d_model
        self.in_norm = nn.LayerNorm(in_channels)
        if d_model is not None:
            self.in_projection = nn.Linear(in_channels, d_model)  # the paper's 1x1 convolution
            self.projection_norm = nn.LayerNorm((n_dates, d_model))
        else:
            self.in_projection = None
            self.projection_norm = None
        self.query = nn.Parameter(torch.empty(n_head, d_k))
        self.key = nn.Linear(self.d_model, n_head * d_k)
        nn.init.normal_(self.query, mean=0.0, std=math.sqrt(2.0 / d_k))
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.attention_dropout = nn.Dropout(attention_dropout)
        layers = []
        for n_in, n_out in zip(n_neurons[:-1], n_neurons[1:]):
            layers += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.LayerNorm(n_neurons[-1])
        encoding = sinusoid_encoding(doy, self.d_model // n_head, period).repeat(1, n_head)
        self.register_buffer("positional_encoding", encoding, persistent=False)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        """(batch, n_neurons[-1]) embeddings of (batch, dates, in_channels) series."""
        batch, dates, _ = series.shape
        h = self.in_norm(series)
        if self.in_projection is not None:  # the positional encoding added as part of the norm's bias: one pass
            norm = self.projection_norm
            h = nn.functional.layer_norm(self.in_projection(h), norm.normalized_shape, norm.weight,
                                         norm.bias + self.positional_encoding, norm.eps)
        else:
            h = h + self.positional_encoding
        # a head's score is its master query against its keys, q . (W_h x + b_h) = (W_h^T q) . x + b_h . q: the
        # query is folded into the key weights (n_head columns instead of n_head * d_k, the same function and
        # parameters, 2x faster inference)
        weight = torch.einsum("hkd,hk->dh", self.key.weight.view(self.n_head, self.d_k, self.d_model), self.query)
        bias = (self.key.bias.view(self.n_head, self.d_k) * self.query).sum(dim=1)
        scores = torch.addmm(bias, h.reshape(batch * dates, self.d_model), weight).view(batch, dates, self.n_head)
        attention = self.attention_dropout(torch.softmax(scores / math.sqrt(self.d_k), dim=1))  # over dates
        values = h.view(batch, dates, self.n_head, self.d_model // self.n_head)
        heads = (values * attention.unsqueeze(-1)).sum(dim=1).reshape(batch, self.d_model)
        return self.out_norm(self.dropout(self.mlp(heads)))


class LTAEClassifier(DLNetwork):
    """L-TAE encoder of the (dates, channels) series, then an MLP decoder to the logits.

    The static features are concatenated to the encoder's embedding before the decoder. Decoder: Linear,
    BatchNorm1d, ReLU for each size of ``decoder``, then Linear to ``n_classes`` (the paper's MLP4 with the
    default sizes 64, 32).
    """

    temporal = True
    hyper_parameters = {
        "d_model": (256, "size of the projection of the channels before attention (null: no projection, "
                         "then the number of channels must be a multiple of n_head)"),
        "n_head": (16, "attention heads"),
        "d_k": (8, "size of the keys and master queries"),
        "n_neurons": ((256, 128), "sizes of the MLP after attention; the first is d_model"),
        "dropout": (0.2, "dropout probability after the MLP"),
        "attention_dropout": (0.1, "dropout probability on the attention weights"),
        "T": (1000.0, "period of the positional encoding of the days"),
        "decoder": ((64, 32), "hidden sizes of the decoder"),
    }

    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__(n_dates, n_channels, n_classes, doy, n_static, layout=layout, **hyper_parameters)
        hp, name = self.hparams, type(self).__name__
        d_model = hp["d_model"]
        _check(name, "d_model", d_model is None or (isinstance(d_model, int) and d_model >= 1),
               "a positive integer or null", d_model)
        _check(name, "n_head", hp["n_head"] >= 1, "a positive integer", hp["n_head"])
        _check(name, "d_k", hp["d_k"] >= 1, "a positive integer", hp["d_k"])
        width = self.n_channels if d_model is None else d_model
        _check(name, "n_head", width % hp["n_head"] == 0,
               f"a divisor of {'the number of channels' if d_model is None else 'd_model'} ({width})", hp["n_head"])
        _check(name, "n_neurons", len(hp["n_neurons"]) >= 1 and hp["n_neurons"][0] == width,
               f"a list starting with {'the number of channels' if d_model is None else 'd_model'} ({width})",
               list(hp["n_neurons"]))
        for key in ("dropout", "attention_dropout"):
            _check(name, key, 0.0 <= hp[key] < 1.0, "a probability in [0, 1)", hp[key])
        _check(name, "T", hp["T"] > 0, "a positive number", hp["T"])
        self.encoder = LTAEEncoder(self.n_channels, self.n_dates, self.doy, n_head=hp["n_head"], d_k=hp["d_k"],
                                   d_model=d_model, n_neurons=hp["n_neurons"], dropout=hp["dropout"],
                                   attention_dropout=hp["attention_dropout"], period=hp["T"])
        layers, size = [], hp["n_neurons"][-1] + self.n_static
        for hidden in hp["decoder"]:
            layers += _dense_block(size, hidden, True, nn.ReLU(), 0.0)
            size = hidden
        layers.append(nn.Linear(size, self.n_classes))
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of (batch, n_features) features."""
        series, static = self.split(x)
        return self.decoder(torch.cat([self.encoder(series), static], dim=1))


class SimpleSelfAttentionClassifier(DLNetwork):
    """A small transformer encoder over the dates.

    Each date's channels are projected to ``d_model`` and the sinusoidal encoding of its day (period ``T``) is
    added; ``n_layers`` pre-norm transformer encoder layers (``n_head`` heads, feed-forward
    ``dim_feedforward``, ``dropout``) attend over the dates; the dates are pooled (``pooling``: ``mean`` of
    the dates' outputs, or ``cls``, the output of a learnt token prepended to the dates without positional
    encoding); LayerNorm, the static features concatenated, Linear to ``n_classes`` logits.
    """

    temporal = True
    hyper_parameters = {
        "d_model": (64, "size of the date embeddings"),
        "n_head": (4, "attention heads (a divisor of d_model)"),
        "n_layers": (2, "transformer encoder layers"),
        "dim_feedforward": (128, "size of the feed-forward layer of each encoder layer"),
        "dropout": (0.1, "dropout probability in the encoder layers"),
        "pooling": ("mean", "how the dates are pooled: mean or cls"),
        "T": (1000.0, "period of the positional encoding of the days"),
    }

    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__(n_dates, n_channels, n_classes, doy, n_static, layout=layout, **hyper_parameters)
        hp, name = self.hparams, type(self).__name__
        for key in ("d_model", "n_head", "n_layers", "dim_feedforward"):
            _check(name, key, hp[key] >= 1, "a positive integer", hp[key])
        _check(name, "n_head", hp["d_model"] % hp["n_head"] == 0, f"a divisor of d_model ({hp['d_model']})",
               hp["n_head"])
        _check(name, "dropout", 0.0 <= hp["dropout"] < 1.0, "a probability in [0, 1)", hp["dropout"])
        _check(name, "pooling", hp["pooling"] in ("mean", "cls"), "mean or cls", hp["pooling"])
        _check(name, "T", hp["T"] > 0, "a positive number", hp["T"])
        d_model = hp["d_model"]
        self.in_projection = nn.Linear(self.n_channels, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if hp["pooling"] == "cls" else None
        layer = nn.TransformerEncoderLayer(d_model, hp["n_head"], hp["dim_feedforward"], hp["dropout"],
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, hp["n_layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model + self.n_static, self.n_classes)
        self.register_buffer("positional_encoding", sinusoid_encoding(self.doy, d_model, hp["T"]),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of (batch, n_features) features."""
        series, static = self.split(x)
        h = self.in_projection(series) + self.positional_encoding
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        h = self.encoder(h)
        pooled = h[:, 0] if self.cls_token is not None else h.mean(dim=1)
        return self.head(torch.cat([self.norm(pooled), static], dim=1))
