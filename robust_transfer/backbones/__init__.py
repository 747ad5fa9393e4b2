"""ImageNet backbones: which ones the study uses, how their published checkpoints are read, and
the files each downstream framework loads.

=================== =========================================================================
``catalogue``       one entry per backbone id: architecture, checkpoint format, URL, sha256
                    (where known), the ImageNet file name, the converted mmdet/mmseg files;
                    :func:`get_backbone`, :func:`list_backbones`, :func:`register_backbone`,
                    ``load_user_backbones`` (a ``backbones:`` YAML file; docs/own-backbone.md)
``resnet_family``   any torchvision/timm ResNet (depth, width, groups, timm's ResNet-D) as a
                    spec read off the keys; its torchvision network and mmdet/mmseg config
``formats``         the published layouts as readers in a registry, auto-detection,
                    :data:`SUPPORTED_FORMATS`
``files``           ``torch.load(weights_only=True)`` with clear errors; the one atomic save
``checks``          :class:`CheckpointError` and the key/shape check every writer runs
``swin_keys``       official Swin-T keys renamed for torchvision and mmseg (shared renames)
``classification``  the torchvision target: read any layout into a checked torchvision state
                    dict; ``export_torchvision`` writes the classification file
``mmdet``           the mmdet target: ResNet and Swin files with an export report; the converter CLI
``mmseg``           the mmseg target: ResNet (the mmdet file) and Swin files; config check
``export_report``   what a conversion kept, dropped, and missed
=================== =========================================================================

Only the catalogue and the format names are imported here (no torch), so planners and
command lines can use them cheaply; import the targets from their modules.
"""
from .catalogue import Backbone, get_backbone, list_backbones, register_backbone
from .checks import CheckpointError
from .formats import SUPPORTED_FORMATS

__all__ = ["Backbone", "CheckpointError", "SUPPORTED_FORMATS", "get_backbone", "list_backbones",
           "register_backbone"]
