"""TempCNN (Pelletier, Webb and Petitjean 2019): 1-D convolutions over the dates of a pixel time series.

The network follows iota2's constructor convention (``iota2.plugins.dl_models``)::

    TempCNNClassifier(n_dates, n_channels, n_classes, doy, n_static=0, *, layout=None, **hyper_parameters)

and declares its hyper-parameters in ``hyper_parameters``. It takes (batch, n_features) standardised features in
the samples' column order, gathers the (batch, dates, channels) series through the feature labels' temporal layout
(:class:`iota2.plugins.dl_networks.DLNetwork`), and returns (batch, n_classes) logits; iota2 applies the softmax
(the paper's output layer) when it classifies.
"""

from __future__ import annotations

import torch
from torch import nn

from iota2.core.errors import ConfigError
from iota2.plugins.dl_networks import DLNetwork

__all__ = ["TempCNNClassifier"]


def _check(key: str, ok: bool, expected: str, value) -> None:
    if not ok:
        raise ConfigError(f"deep_learning_parameters.dl_parameters.{key} (TempCNNClassifier): expected {expected}, "
                          f"got {value!r}")


class TempCNNClassifier(DLNetwork):
    """Temporal convolutional network of Pelletier et al. (2019) on the (dates, channels) series.

    ``n_conv`` blocks of Conv1d over the dates (``n_filters`` filters of width ``kernel_size``, zero padding that
    keeps the number of dates), BatchNorm1d, ReLU, Dropout; the maps flattened (dates x filters) and the static
    features concatenated; one dense block Linear(``hidden_size``), BatchNorm1d, ReLU, Dropout; Linear to the logits.

    The paper's network has 3 convolutions of 64 filters of width 5, a dense layer of 256 neurons and dropout 0.2;
    the defaults here are smaller (32 filters, 64 neurons) for small training sets.
    """

    temporal = True
    hyper_parameters = {
        "n_conv": (3, "number of convolution blocks"),
        "n_filters": (32, "filters of each convolution"),
        "kernel_size": (5, "width of the convolutions, in dates"),
        "hidden_size": (64, "neurons of the dense layer"),
        "dropout": (0.2, "dropout probability after each convolution block and the dense layer (0 for none)"),
    }

    def __init__(self, n_dates, n_channels, n_classes, doy=None, n_static=0, *, layout=None, **hyper_parameters):
        super().__init__(n_dates, n_channels, n_classes, doy, n_static, layout=layout, **hyper_parameters)
        hp = self.hparams
        for key in ("n_conv", "n_filters", "kernel_size", "hidden_size"):
            _check(key, hp[key] >= 1, "a positive integer", hp[key])
        _check("dropout", 0.0 <= hp["dropout"] < 1.0, "a probability in [0, 1)", hp["dropout"])
        blocks, size = [], self.n_channels
        for _ in range(hp["n_conv"]):
            blocks += [nn.Conv1d(size, hp["n_filters"], hp["kernel_size"], padding="same"),
                       nn.BatchNorm1d(hp["n_filters"]), nn.ReLU(), nn.Dropout(hp["dropout"])]
            size = hp["n_filters"]
        self.convolutions = nn.Sequential(*blocks)
        self.dense = nn.Sequential(nn.Linear(self.n_dates * hp["n_filters"] + self.n_static, hp["hidden_size"]),
                                   nn.BatchNorm1d(hp["hidden_size"]), nn.ReLU(), nn.Dropout(hp["dropout"]))
        self.output = nn.Linear(hp["hidden_size"], self.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_classes) of (batch, n_features) features."""
        series, static = self.split(x)  # (batch, dates, channels), (batch, n_static)
        maps = self.convolutions(series.transpose(1, 2))  # (batch, n_filters, dates)
        return self.output(self.dense(torch.cat([maps.flatten(1), static], dim=1)))
