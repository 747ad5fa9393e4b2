"""Classification transfer (CIFAR-10/100) on plain torch/torchvision, with the recipe and the
command line of microsoft/robust-models-transfer, plus the corruption evaluation it lacks.

Front door: :func:`run_transfer` with a :class:`TransferConfig` (what
``robust-models-transfer/src/main.py`` builds from its flags). The parts:

* :mod:`.models` -- architectures, normalisation inside the model, head replacement;
* :mod:`.freeze` -- ``--freeze-level`` semantics and BatchNorm behaviour;
* :mod:`.data` -- transforms, data sets (optionally corrupted on the fly), seeded loaders;
* :mod:`.training` -- the fine-tuning loop, logs, checkpoints, resume; PRIME augmentation of the
  training batches (``TransferConfig(prime=True)``, ``--prime``; see ``docs/prime.md``);
* :mod:`.evaluation` -- clean and corrupted accuracy into the shared results schema.
"""
from .config import PAPER_RECIPE, TransferConfig
from .models import build_transfer_model, create_model, list_archs
from .runner import run_transfer

__all__ = ["PAPER_RECIPE", "TransferConfig", "build_transfer_model", "create_model", "list_archs",
           "run_transfer"]
