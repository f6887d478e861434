"""Registers :class:`iota2_tempcnn_model.network.TempCNNClassifier` as the iota2 network ``TempCNNClassifier``.

The network module imports torch; it is imported when iota2 asks for the networks, not when the plugin is loaded,
so listing the plugins or checking a configuration that does not use deep learning does not import torch.
"""

from __future__ import annotations

from iota2.core.hookspecs import hookimpl


@hookimpl
def iota2_register_dl_models():
    """``{"TempCNNClassifier": class}``; nothing without torch (iota2 then says how to install it)."""
    try:
        from iota2_tempcnn_model.network import TempCNNClassifier
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "torch":
            return {}
        raise
    return {"TempCNNClassifier": TempCNNClassifier}
