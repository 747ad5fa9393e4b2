"""The batched corruption path of the robustness runner (``test_robustness.py --corrupt-on batch``):
a data preprocessor that corrupts a whole collated batch on the model's device, before the
task's own preprocessor converts channels, normalises and pads it.

Registered on import as ``CorruptDataPreprocessor`` in mmdet's and mmseg's ``MODELS`` (those
installed), and the two pipeline steps it needs, ``StashNativeImage`` and
``RestoreNativeImage``, in their ``TRANSFORMS``. The robustness runner sets all of this up
itself (:func:`robust_transfer.openmmlab.pipeline.enable_batch_corruption`); by hand::

    model = dict(data_preprocessor=dict(
        _delete_=True, type='CorruptDataPreprocessor',
        preprocessor={{_base_.model.data_preprocessor}},   # DetDataPreprocessor / SegDataPreProcessor
        seed=0, native_inputs=True, resize=dict(interpolation='bilinear', backend='cv2')))
    # test pipeline: LoadImageFromFile, StashNativeImage, Resize, LoadAnnotations,
    #                RestoreNativeImage, Pack*Inputs

and per evaluation ``model.data_preprocessor.set_corruption('fog', 3)`` (``None``: clean).

**Where the corruption happens -- the same place as in pipeline mode.** The pipeline ``Corrupt``
transform corrupts the image as stored on disk, right after loading and *before* the test
``Resize`` (as mmdet's tool, COCO-C and the paper do). A preprocessor sees the batch after the
pipeline, i.e. after ``Resize``: corrupting there would apply each corruption at the model's
input resolution instead (for COCO at 1333x800, an upscaling of about 1.67: blur radii, noise
grain, pixelate and JPEG blocks, frost and fog textures all shrink by that factor relative to the
content, and the numbers stop being comparable with pipeline mode, mmdet's tool and published
COCO-C / ADE20K-C results). So with ``native_inputs=True`` the loader delivers the *native*
image: ``StashNativeImage`` keeps the loaded image, ``Resize`` still runs (it computes
``img_shape`` and ``scale_factor`` as usual), and ``RestoreNativeImage`` puts the native image
back just before packing. The preprocessor then corrupts the native images on the device and
resizes each to its ``img_shape`` with the very call ``Resize`` makes (``mmcv.imresize`` with the
step's ``interpolation`` and ``backend``; on the CPU, since OpenCV's fixed-point bilinear is not
reproduced on the device). On the CPU this gives byte for byte the inputs of pipeline mode with
``--backend torch`` (the torch backend's image ``i`` of a batch equals that image alone); on a GPU
the corruption's float arithmetic may move a grey level here and there.

Per batch (test and validation only; ``training=True`` passes the batch through untouched):

* the inputs (mmdet/mmseg's list of ``(C, H, W)`` uint8 tensors of different sizes) are grouped
  by size; each group is stacked, moved to the device, put in RGB order (the images of mmcv
  pipelines are BGR; ``channel_order='rgb'`` if the loading step was told otherwise; BGRA keeps
  alpha last; grey stays grey) and corrupted with one ``corrupt_batch`` call;
* image ``i`` is keyed exactly as the pipeline ``Corrupt`` keys it: the basename of its
  ``img_path`` (else ``img_id``, else ``sample_idx``) from the data sample's metainfo, so the two
  modes draw the same random numbers;
* (``native_inputs=True``) each image is resized to ``img_shape``; then the inner preprocessor
  runs as usual.

Attributes the wrapper does not have are looked up on the inner preprocessor.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

try:  # mmcv is a dependency of the frameworks
    from mmcv.transforms import BaseTransform
except ImportError:  # pragma: no cover
    BaseTransform = object  # type: ignore[assignment,misc]

from .transforms import check_corruption, image_key
from .wrapping_preprocessor import WrappingDataPreprocessor, framework_variants, register_wrappers

CHANNEL_ORDERS = ("bgr", "rgb")
NATIVE_KEY = "native_img"


# ----------------------------------------------------------------------------- pipeline steps


class StashNativeImage(BaseTransform):
    """Keep the image as loaded, for :class:`RestoreNativeImage` (put it right after loading).

    Required Keys: img. Added Keys: native_img (the same array; the resize makes a new one).
    """

    def transform(self, results: dict) -> dict:
        if "img" not in results:
            raise KeyError("StashNativeImage needs results['img']: put it after the image-loading step")
        results[NATIVE_KEY] = results["img"]
        return results


class RestoreNativeImage(BaseTransform):
    """Put the stashed native image back in ``img`` (put it right before ``Pack*Inputs``).

    ``img_shape`` and ``scale_factor`` keep the values the resize gave them: the packed input is
    the native image, and :class:`CorruptDataPreprocessor` (``native_inputs=True``) resizes it
    to ``img_shape`` after corrupting it.

    Required Keys: native_img. Modified Keys: img. Removed Keys: native_img.
    """

    def transform(self, results: dict) -> dict:
        if NATIVE_KEY not in results:
            raise KeyError("RestoreNativeImage needs results['native_img']: put StashNativeImage "
                           "right after the image-loading step")
        results["img"] = results.pop(NATIVE_KEY)
        return results


# ----------------------------------------------------------------------------- the preprocessor


def _check_corruption(corruption: str | None, severity: int | None) -> tuple[str, int] | None:
    if corruption is None:
        return None
    return check_corruption(corruption, severity, clean_hint="the clean images: set_corruption(None)")


def _rgb_order(channels: int, channel_order: str) -> list[int] | None:
    """Channel permutation to RGB(A) and back (its own inverse); None when nothing to swap."""
    if channel_order == "bgr" and channels in (3, 4):
        return [2, 1, 0, 3][:channels]
    return None


class CorruptDataPreprocessor(WrappingDataPreprocessor):
    """Wrap a data preprocessor; corrupt test batches on the device before it (module doc).

    Args:
        preprocessor: the task's own preprocessor: a config dict (built from the framework's
            ``MODELS`` registry) or a module.
        corruption, severity: what to apply (None: nothing; change it with
            :meth:`set_corruption`).
        seed: the corruption seed (with each image's key, the corruption and the severity, it
            determines every random draw).
        channel_order: ``'bgr'`` (mmcv's loading order, the default) or ``'rgb'``: the order of
            the raw input channels.
        native_inputs: the inputs are the native images of a pipeline with
            ``StashNativeImage``/``RestoreNativeImage``: resize each to its ``img_shape`` after
            corrupting it (also for the clean images).
        resize: ``dict(interpolation=..., backend=...)`` of that resize (mmcv ``Resize``'s
            arguments; default bilinear, cv2).
        non_blocking: as in mmengine's ``BaseDataPreprocessor``.
    """

    def __init__(self, preprocessor: Mapping | torch.nn.Module, corruption: str | None = None,
                 severity: int | None = None, seed: int = 0, channel_order: str = "bgr",
                 native_inputs: bool = False, resize: Mapping | None = None,
                 non_blocking: bool = False):
        super().__init__(non_blocking)
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {', '.join(CHANNEL_ORDERS)}, "
                             f"got {channel_order!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self._set_inner(preprocessor, "CorruptDataPreprocessor")
        self.seed = int(seed)
        self.channel_order = channel_order
        self.native_inputs = bool(native_inputs)
        resize = dict(resize or {})
        unknown = sorted(set(resize) - {"interpolation", "backend"})
        if unknown:
            raise ValueError(f"resize takes interpolation and backend, got {unknown}")
        self.resize = {"interpolation": resize.get("interpolation", "bilinear"),
                       "backend": resize.get("backend", "cv2")}
        self.corruption = _check_corruption(corruption, severity)

    def set_corruption(self, corruption: str | None, severity: int | None = None) -> None:
        """What the next test batches get: ``('fog', 3)``; ``None`` for the clean images."""
        self.corruption = _check_corruption(corruption, severity)

    # -- the work
    def _keys(self, data_samples: Sequence | None, count: int) -> list:
        if data_samples is None or len(data_samples) != count:
            raise ValueError("CorruptDataPreprocessor needs one data sample per image to key the "
                             "corruption (img_path, img_id or sample_idx in its metainfo)")
        return [image_key(dict(sample.metainfo)) for sample in data_samples]

    def corrupt_inputs(self, inputs: Sequence[torch.Tensor], keys: Sequence) -> list[torch.Tensor]:
        """Corrupt a list of (C, H, W) uint8 tensors on the device, size group by size group
        (first appearance order); returns them in their order, on the device."""
        from ..corruptions import corrupt_batch

        name, severity = self.corruption
        groups: dict[tuple, list[int]] = {}
        for index, image in enumerate(inputs):
            if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.dtype != torch.uint8:
                raise ValueError("CorruptDataPreprocessor expects each input to be a (C, H, W) uint8 "
                                 f"tensor, got {type(image).__name__} "
                                 f"{getattr(image, 'dtype', '')} {tuple(getattr(image, 'shape', ()))}"
                                 " (load images with to_float32=False)")
            groups.setdefault(tuple(image.shape), []).append(index)
        out: list[torch.Tensor | None] = [None] * len(inputs)
        for shape, indices in groups.items():
            batch = torch.stack([inputs[i] for i in indices])
            batch = batch.to(self._device, non_blocking=self._non_blocking)
            order = _rgb_order(shape[0], self.channel_order)
            if order is not None:
                batch = batch[:, order]
            # --amp runs the test step (this preprocessor included) under autocast; the
            # corrupted pixels must not depend on it (a blur's conv in bfloat16 moves them)
            with torch.autocast(device_type=batch.device.type, enabled=False):
                batch = corrupt_batch(batch, name, severity, seed=self.seed,
                                      keys=[keys[i] for i in indices])
            if order is not None:
                batch = batch[:, order]
            for i, image in zip(indices, batch.unbind(0)):
                out[i] = image
        return out  # type: ignore[return-value]

    def resize_to_img_shape(self, images: Sequence[torch.Tensor],
                            data_samples: Sequence) -> list[torch.Tensor]:
        """Each native (C, H, W) image resized to its data sample's ``img_shape`` by
        ``mmcv.imresize`` (the resize step's own call, so the same bytes), back on its device."""
        import mmcv

        out = []
        for image, sample in zip(images, data_samples):
            target = sample.metainfo.get("img_shape")
            if target is None:
                raise ValueError("native_inputs=True needs img_shape in each data sample's metainfo "
                                 "(add it to the Pack*Inputs meta_keys)")
            height, width = int(target[0]), int(target[1])
            if tuple(image.shape[-2:]) == (height, width):
                out.append(image)
                continue
            array = image.permute(1, 2, 0).cpu().numpy()
            resized = mmcv.imresize(array, (width, height), **self.resize)
            if resized.ndim == 2:
                resized = resized[..., None]
            out.append(torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).to(image.device))
        return out

    def forward(self, data: dict, training: bool = False):
        self.preprocessor._device = self._device  # follow .to() calls made on the wrapper
        if training or (self.corruption is None and not self.native_inputs):
            return self.preprocessor(data, training)
        inputs = data["inputs"]
        if isinstance(inputs, torch.Tensor):  # an already stacked (N, C, H, W) batch
            inputs = list(inputs.unbind(0))
        inputs = list(inputs)
        samples = data.get("data_samples")
        if self.corruption is not None:
            inputs = self.corrupt_inputs(inputs, self._keys(samples, len(inputs)))
        if self.native_inputs:
            inputs = self.resize_to_img_shape(inputs, samples or [])
        data = dict(data)
        data["inputs"] = inputs
        return self.preprocessor(data, training)


CorruptDetDataPreprocessor, CorruptSegDataPreprocessor = framework_variants(CorruptDataPreprocessor)


def register_corrupt_preprocessor() -> list[str]:
    """Register the wrapper (``MODELS``) and the two pipeline steps (``TRANSFORMS``) in mmdet
    and mmseg (those installed); idempotent. Returns the frameworks registered into."""
    return register_wrappers("CorruptDataPreprocessor", {"mmdet": CorruptDetDataPreprocessor,
                                                         "mmseg": CorruptSegDataPreprocessor},
                             transforms=(StashNativeImage, RestoreNativeImage))


REGISTERED = register_corrupt_preprocessor()
