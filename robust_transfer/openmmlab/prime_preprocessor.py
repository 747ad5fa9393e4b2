"""PRIME as an mmengine data preprocessor, for mmdet and mmseg training (registered as
``PRIMEDataPreprocessor`` in both frameworks' ``MODELS`` registries on import).

It wraps the task's own preprocessor and, in training only, applies PRIME to the raw images
*before* handing the batch on, i.e. before the inner preprocessor's BGR->RGB conversion,
normalisation and padding::

    custom_imports = dict(imports=['robust_transfer.openmmlab.mmdet',
                                   'robust_transfer.openmmlab.prime_preprocessor'],
                          allow_failed_imports=False)
    model = dict(data_preprocessor=dict(
        _delete_=True, type='PRIMEDataPreprocessor',
        preprocessor={{_base_.model.data_preprocessor}},   # e.g. DetDataPreprocessor(...)
        prime=dict(),            # PRIME parameters; dict(preset='imagenet') for the paper's
        seed=0))

Why here: the original experiments applied PRIME to the already-normalised batch and then
normalised it a second time. Here PRIME sees what it was designed for -- the images in [0, 1]
(raw 0..255 values divided by ``input_scale``) -- and the normalisation happens once, after.

What it does with a batch (``data['inputs']``: mmdet/mmseg's list of ``(C, H, W)`` uint8
tensors, or a stacked ``(N, C, H, W)`` tensor):

* ``training=False`` (validation, test, robustness grids): the batch goes to the inner
  preprocessor untouched.
* ``training=True``: the batch is moved to the model's device; images of equal size are
  augmented together (each image with its own draws); values are clipped to
  ``0..input_scale``, divided by it, put in RGB order (``channel_order``: ``auto`` = RGB if the
  inner config has ``rgb_to_bgr=True``, else BGR, mmcv's loading order), augmented, put back in
  their order and multiplied back. The result is float (not rounded) and goes to the inner
  preprocessor, which converts channels, normalises and pads as usual. Padding therefore never
  sees PRIME: it is applied to each image before padding, and pad values stay as configured.

Randomness: each call draws from a fresh ``torch.Generator`` seeded with a SHA-256 of
``(seed, rank, iteration, call within the iteration)``, the iteration being mmengine's
``MessageHub`` ``iter`` (the train loop's counter). A resumed run thus repeats the augmentation
of an uninterrupted one, and ranks draw differently. Outside a runner (no ``iter``) a call
counter is used instead.

Attributes the wrapper does not have are looked up on the inner preprocessor (``mean``,
``pad_size_divisor``, ...), so model code that reads them keeps working.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..augment.params import stable_seed
from ..augment.prime import PRIME
from .wrapping_preprocessor import WrappingDataPreprocessor, framework_variants, register_wrappers

CHANNEL_ORDERS = ("auto", "bgr", "rgb")


def _current_iter() -> int | None:
    try:
        from mmengine.logging import MessageHub

        value = MessageHub.get_current_instance().get_info("iter")
    except Exception:  # no message hub: plain use outside a runner
        return None
    return None if value is None else int(value)


def _rank() -> int:
    try:
        from mmengine.dist import get_rank

        return int(get_rank())
    except Exception:
        return 0


class PRIMEDataPreprocessor(WrappingDataPreprocessor):
    """Wrap a data preprocessor; apply PRIME to training batches before it (see the module doc).

    Args:
        preprocessor: the task's preprocessor: a config dict (built from the framework's
            ``MODELS`` registry) or a module.
        prime: PRIME parameters (:data:`robust_transfer.augment.params.PARAMETERS`), optionally
            with ``preset='imagenet'`` and ``enabled=False``. Default: the transfer settings.
        seed: seed of the augmentation stream (combined with rank and iteration).
        input_scale: value of white in the raw images (255 for 8-bit images).
        channel_order: ``auto``, ``bgr`` or ``rgb``: the channel order of the raw images.
        non_blocking: as in mmengine's ``BaseDataPreprocessor``.
    """

    def __init__(self, preprocessor: Mapping | torch.nn.Module, prime: Mapping | None = None,
                 seed: int = 0, input_scale: float = 255.0, channel_order: str = "auto",
                 non_blocking: bool = False):
        super().__init__(non_blocking)
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {', '.join(CHANNEL_ORDERS)}, "
                             f"got {channel_order!r}")
        if not input_scale > 0:
            raise ValueError(f"input_scale must be > 0, got {input_scale!r}")
        self._set_inner(preprocessor, "PRIMEDataPreprocessor")
        self.prime = PRIME.from_config(prime)
        self.seed = int(seed)
        self.input_scale = float(input_scale)
        if channel_order == "auto":
            from_cfg = isinstance(preprocessor, Mapping)  # (a module: no rgb_to_bgr to read)
            channel_order = "rgb" if from_cfg and preprocessor.get("rgb_to_bgr") else "bgr"
        self.channel_order = channel_order
        self._calls = 0
        self._last_iter: int | None = None
        self._calls_at_iter = 0

    # -- randomness
    def next_generator(self) -> torch.Generator:
        """The generator of the next training batch (see the module docstring)."""
        iteration = _current_iter()
        if iteration is None:
            key = ["call", self._calls]
            self._calls += 1
        else:
            if iteration != self._last_iter:
                self._last_iter, self._calls_at_iter = iteration, 0
            key = ["iter", iteration, self._calls_at_iter]
            self._calls_at_iter += 1
        seed = stable_seed("PRIMEDataPreprocessor", self.seed, _rank(), *key)
        return torch.Generator().manual_seed(seed)

    # -- the augmentation
    def _augment_batch(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = batch.float().clamp(0.0, self.input_scale) / self.input_scale
        flip = self.channel_order == "bgr" and x.shape[1] == 3
        if flip:
            x = x.flip(1)
        y = self.prime(x, generator)
        if flip:
            y = y.flip(1)
        return y * self.input_scale

    def augment_inputs(self, inputs: torch.Tensor | Sequence[torch.Tensor],
                       generator: torch.Generator | None = None):
        """PRIME on raw training inputs (a list of ``(C, H, W)`` tensors or an ``(N, C, H, W)``
        tensor); returns the same structure with float tensors in 0..``input_scale``."""
        generator = self.next_generator() if generator is None else generator
        if isinstance(inputs, torch.Tensor):
            if inputs.ndim != 4:
                raise ValueError(f"expected (N, C, H, W) inputs, got shape {tuple(inputs.shape)}")
            return self._augment_batch(inputs, generator)
        inputs = list(inputs)
        groups: dict[tuple, list[int]] = {}
        for index, image in enumerate(inputs):
            if not isinstance(image, torch.Tensor) or image.ndim != 3:
                raise ValueError("expected each input to be a (C, H, W) tensor, got "
                                 f"{type(image).__name__} {tuple(getattr(image, 'shape', ()))}")
            groups.setdefault((tuple(image.shape), image.device), []).append(index)
        out: list[torch.Tensor | None] = [None] * len(inputs)
        for indices in groups.values():  # insertion order: first appearance, deterministic
            augmented = self._augment_batch(torch.stack([inputs[i] for i in indices]), generator)
            for i, image in zip(indices, augmented.unbind(0)):
                out[i] = image
        return out

    def forward(self, data: dict, training: bool = False):
        if training and not self.prime.is_identity:
            self.preprocessor._device = self._device  # follow .to() calls made on the wrapper
            data = dict(self.cast_data(data))
            data["inputs"] = self.augment_inputs(data["inputs"])
        return self.preprocessor(data, training)


PRIMEDetDataPreprocessor, PRIMESegDataPreprocessor = framework_variants(PRIMEDataPreprocessor)


def register_prime_preprocessor() -> list[str]:
    """Register the wrapper in mmdet's and mmseg's ``MODELS`` (those installed) under the name
    ``PRIMEDataPreprocessor``; idempotent. Returns the frameworks registered into."""
    return register_wrappers("PRIMEDataPreprocessor", {"mmdet": PRIMEDetDataPreprocessor,
                                                       "mmseg": PRIMESegDataPreprocessor})


REGISTERED = register_prime_preprocessor()
