"""Clean and corrupted accuracy of a fine-tuned classifier, cell by cell, into the shared
results schema (:mod:`robust_transfer.results`) through :func:`robust_transfer.grid.run_grid`.

Two sources of corrupted test images:

* ``cifar-c`` -- the released CIFAR-10-C (or CIFAR-100-C) files (``--cifar10c-dir``). They were
  made with Hendrycks & Dietterich's *CIFAR-sized* corruption parameters, which differ from
  ImageNet-C's; numbers in this mode are comparable with published CIFAR-10-C results.
* ``on-the-fly`` -- our corruption library applied to the 32x32 test images while loading,
  with the *ImageNet-C* parameters (the same corruptions the detection and segmentation tasks
  use). Test image ``i`` is corrupted with ``key=i`` and the corruption seed, so every run,
  worker and machine sees the same corrupted bytes.

In both modes the corruption hits the native 32x32 image, before the test transform upsamples
it (as for the released files). The model is built once and evaluated on every cell.

With ``corruption_backend='torch'`` (on the fly) the evaluation takes the batched path
(:func:`evaluate_batched_on_device`): clean uint8 batches are moved to the device, corrupted there
in one ``corrupt_batch`` call per batch (keys = the test indices, as per image), then resized,
cropped and scaled by :func:`device_test_transform`, which reproduces the PIL test transform bit
for bit (on a GPU in integer arithmetic there, on the CPU with Pillow itself). On the CPU the
model sees exactly the tensors of the per-image path, so the accuracies are the same;
``evaluate_robustness(..., batched=False)`` keeps the per-image path (the corruption inside the
data loader, whose ``workers`` can spread it over CPU cores).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from ..datasets.cifar import ImageArrays, cifar_c_corruptions, load_cifar_c
from ..grid import Cell, build_cells, run_grid
from ..results import new_results
from .config import TransferConfig
from .data import ArrayImageDataset, make_loader, test_transform
from .models import NormalizedClassifier, create_model, replace_head
from .training import accuracy_and_loss, load_run_checkpoint


def load_finetuned_model(path: str | Path) -> tuple[NormalizedClassifier, dict]:
    """Rebuild the model a fine-tuning checkpoint was saved from; returns ``(model, checkpoint)``."""
    checkpoint = load_run_checkpoint(path)
    saved = checkpoint["config"]
    net = create_model(saved["arch"], 1000)
    replace_head(net, saved["arch"], int(checkpoint["num_classes"]), int(saved["additional_hidden"]))
    model = NormalizedClassifier(net, checkpoint["normalization_mean"], checkpoint["normalization_std"])
    model.load_state_dict(checkpoint["model"])
    return model, checkpoint


def corruption_source(config: TransferConfig) -> str:
    """``cifar-c`` when a CIFAR-C folder is given, else ``on-the-fly``."""
    return "cifar-c" if config.cifar_c_dir else "on-the-fly"


def default_results_path(config: TransferConfig) -> Path:
    """``<exp_dir>/robustness_<source>.json`` (one file per corruption source)."""
    if corruption_source(config) == "cifar-c":
        return config.exp_dir / f"robustness_{config.dataset}-c.json"
    return config.exp_dir / f"robustness_onthefly_{config.corruption_backend}.json"


def _recipe(config: TransferConfig) -> str:
    # Identifies the training recipe in the results' identity ("config" field): resuming an
    # evaluation into a file made with another recipe is refused.
    keys = ("arch", "dataset", "freeze_level", "freeze_bn_stats", "additional_hidden", "epochs",
            "lr", "step_lr", "step_lr_gamma", "batch_size", "weight_decay", "momentum", "subset",
            "normalization", "input_size", "seed")
    recipe = "robust-models-transfer " + " ".join(f"{k}={getattr(config, k)}" for k in keys)
    if config.prime:  # (absent without PRIME: identities of earlier results files are unchanged)
        import json

        recipe += " prime=" + json.dumps(config.prime_settings, sort_keys=True, separators=(",", ":"))
    return recipe


def _check_corruption_source(config: TransferConfig, source: str, corrupted_names: list[str]) -> None:
    """Refuse, before any model is loaded, corruptions the CIFAR-C folder lacks or the library
    does not know (its message, rather than one from inside a data-loader worker)."""
    if source == "cifar-c":
        available = set(cifar_c_corruptions(config.cifar_c_dir))
        missing = [name for name in corrupted_names if name not in available]
        if missing:
            raise FileNotFoundError(
                f"--cifar10c-dir {config.cifar_c_dir} has no {', '.join(missing)} "
                f"(available: {', '.join(sorted(available)) or 'none'})")
    if source == "on-the-fly" and corrupted_names:
        from ..corruptions import corrupt

        corrupt(np.zeros((32, 32, 3), np.uint8), corrupted_names[0], 1,
                backend=config.corruption_backend)


def _new_results_document(config: TransferConfig, source: str, checkpoint_path, checkpoint: dict,
                          backbone: str | None, *, test_images: int, corruption_seed: int,
                          batched: bool) -> dict:
    """The results document of one evaluation, before any cell."""
    subset_tag = "" if config.eval_subset is None else f"[:{test_images}]"
    dataset_name = (f"{config.dataset}-c{subset_tag}" if source == "cifar-c"
                    else f"{config.dataset}-test{subset_tag}+library-corruptions")
    return new_results(
        task="classification", model=config.exp_name, backbone=backbone or config.backbone_name,
        transfer_mode=config.transfer_mode, config=_recipe(config), checkpoint=str(Path(checkpoint_path).resolve()),
        dataset=dataset_name, seed=corruption_seed if source == "on-the-fly" else config.seed,
        backend=config.corruption_backend if source == "on-the-fly" else "cifar-c-files",
        metrics=["top1"], primary_metric="top1", metric_scale=100.0,
        extra={"corruption_source": source,
               "cifar_c_dir": str(Path(config.cifar_c_dir).resolve()) if config.cifar_c_dir else None,
               "corruption_parameters": "CIFAR-10-C (Hendrycks & Dietterich)" if source == "cifar-c"
               else "ImageNet-C (robust_transfer.corruptions)",
               "input_size": config.input_size, "test_images": test_images,
               "checkpoint_epoch": int(checkpoint["epoch"]), "arch": config.arch,
               "freeze_level": config.freeze_level, "model_path": config.model_path,
               **({"corrupt_on": "device-batch" if batched else "data-loader"}
                  if source == "on-the-fly" else {})})


def evaluate_robustness(config: TransferConfig, checkpoint_path: str | Path, test: ImageArrays,
                        device: torch.device, *, backbone: str | None = None,
                        batched: bool | None = None) -> Path:
    """Evaluate the clean cell and ``config.eval_corruptions`` x ``config.severities`` for the
    model in ``checkpoint_path``; write (and resume) the results file. Returns its path.

    ``batched``: corrupt and transform whole batches on ``device``
    (:func:`evaluate_batched_on_device`) instead of image by image in the data loader. Default
    (None): batched exactly when the corruptions are made on the fly by the torch backend.
    """
    source = corruption_source(config)
    if batched is None:
        batched = source == "on-the-fly" and config.corruption_backend == "torch"
    elif batched and (source != "on-the-fly" or config.corruption_backend != "torch"):
        raise ValueError("the batched evaluation path corrupts on the fly with the torch backend: "
                         "it needs --corruption-backend torch and no CIFAR-C folder")
    corruptions = config.eval_corruptions or "none"
    cells = build_cells(corruptions, [0, *config.severities])
    _check_corruption_source(config, source, sorted({c.corruption for c in cells if not c.is_clean}))
    model, checkpoint = load_finetuned_model(checkpoint_path)
    model.to(device)
    indices = np.arange(len(test) if config.eval_subset is None else min(config.eval_subset, len(test)))
    images, labels = test.images[indices], test.labels[indices]
    transform = test_transform(config.input_size)
    corruption_seed = config.seed if config.corruption_seed is None else config.corruption_seed
    eval_batch = config.eval_batch_size or config.batch_size

    def dataset_for(cell: Cell) -> ArrayImageDataset:
        if cell.is_clean:
            return ArrayImageDataset(images, labels, transform, keys=indices)
        if source == "cifar-c":
            corrupted = load_cifar_c(config.cifar_c_dir, cell.corruption, cell.severity, config.dataset)
            if len(corrupted) != len(test) or not np.array_equal(corrupted.labels, test.labels):
                raise ValueError(
                    f"{config.cifar_c_dir}/{cell.corruption}.npy holds {len(corrupted)} images per "
                    f"severity whose labels do not match the {len(test)} test images of "
                    f"{config.data}: is it the -C folder of this data set?")
            return ArrayImageDataset(corrupted.images[indices], labels, transform, keys=indices)
        return ArrayImageDataset(images, labels, transform, keys=indices,
                                 corruption=(cell.corruption, cell.severity, corruption_seed,
                                             config.corruption_backend))

    def evaluate_cell(cell: Cell) -> dict[str, float]:
        if batched:
            top1 = evaluate_batched_on_device(
                model, images, labels, indices, None if cell.is_clean else (cell.corruption, cell.severity),
                seed=corruption_seed, input_size=config.input_size, batch_size=eval_batch,
                device=device, desc=str(cell), progress=config.progress)
            return {"top1": top1}
        loader = make_loader(dataset_for(cell), batch_size=eval_batch, shuffle=False,
                             workers=config.workers, device=str(device))
        top1, _ = accuracy_and_loss(model, loader, device, desc=str(cell), progress=config.progress)
        return {"top1": top1}

    results = _new_results_document(config, source, checkpoint_path, checkpoint, backbone,
                                    test_images=len(indices), corruption_seed=corruption_seed,
                                    batched=batched)
    path = Path(config.results) if config.results else default_results_path(config)
    results = run_grid(cells, evaluate_cell, results, path, resume=config.resume,
                       images_per_cell=len(indices), progress=config.progress)
    clean = results["cells"]["clean"]["0"]["top1"]
    print(f"[eval] {len(cells)} cells, clean top1 {clean:.2f}%; results: {path}", file=sys.stderr)
    return path


# ----------------------------------------------------------------------------- batched path
# (the torch backend on the fly: corruption, resize, crop and scaling on the device, per batch)


def device_test_transform(images: torch.Tensor, input_size: int, resize_with: str = "auto") -> torch.Tensor:
    """:func:`~robust_transfer.classification.data.test_transform` (``Resize`` of the shorter side,
    ``CenterCrop``, ``ToTensor``) applied to a (N, C, H, W) uint8 batch on its device.

    The sizes are read off ``test_transform(input_size)`` itself; the resize is Pillow's 8-bit
    BILINEAR: ``resize_with='torch'`` re-implements it bit-exactly in integer arithmetic on the
    batch's device (:func:`robust_transfer.corruptions._torch_ops.pil_resize_bilinear`);
    ``'pil'`` calls Pillow image by image (on the CPU, where Pillow's SIMD code is about 5x faster
    than the torch version); ``'auto'``: Pillow for CPU tensors, torch otherwise. The crop is
    torchvision's and the scaling ``ToTensor``'s ``float / 255``: either way the result equals
    the per-image PIL path's tensors exactly. Returns float32 in [0, 1].
    """
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF

    from ..corruptions._torch_pillow import pil_resize_bilinear

    steps = test_transform(input_size).transforms
    resize, crop = steps[0], steps[1]
    if not (isinstance(resize, T.Resize) and isinstance(crop, T.CenterCrop)
            and resize.interpolation == T.InterpolationMode.BILINEAR and resize.max_size is None):
        raise RuntimeError(f"device_test_transform reproduces Resize(bilinear) + CenterCrop, "
                           f"but test_transform is {steps}")
    height, width = images.shape[-2:]
    size = resize.size if isinstance(resize.size, int) else resize.size[0]
    if isinstance(resize.size, int) or len(resize.size) == 1:
        # torchvision's rule for a single int: the shorter side becomes ``size``
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    else:
        new_h, new_w = resize.size
    if resize_with not in ("auto", "pil", "torch"):
        raise ValueError(f"resize_with must be auto, pil or torch, got {resize_with!r}")
    if resize_with == "pil" or (resize_with == "auto" and images.device.type == "cpu"):
        from PIL import Image

        channels_last = images.permute(0, 2, 3, 1).cpu().numpy()
        resized = torch.from_numpy(np.stack([
            np.asarray(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)
                       .resize((new_w, new_h), Image.BILINEAR)).reshape(new_h, new_w, -1)
            for image in channels_last])).permute(0, 3, 1, 2).to(images.device)
    else:
        resized = pil_resize_bilinear(images, new_h, new_w)
    return TF.center_crop(resized, list(crop.size)).to(torch.float32).div(255)


def corrupted_test_batch(images: torch.Tensor, keys, corruption: tuple[str, int] | None, *,
                         seed: int, input_size: int, resize_with: str = "auto") -> torch.Tensor:
    """A (N, H, W, 3) uint8 batch of native test images (any device) -> the model's float input:
    ``corrupt_batch`` (one call, image ``i`` keyed ``keys[i]`` like the per-image path's
    ``corrupt(..., key=i)``) at the native size, then :func:`device_test_transform`.
    ``corruption`` is ``(name, severity)``, or None for the clean images."""
    from ..corruptions import corrupt_batch

    batch = images.permute(0, 3, 1, 2)
    if corruption is not None:
        name, severity = corruption
        batch = corrupt_batch(batch, name, severity, seed=seed, keys=[int(k) for k in keys])
    return device_test_transform(batch, input_size, resize_with)


class _DeviceBatches:
    """Iterable of ``(inputs, labels)`` on the device, built by :func:`corrupted_test_batch`
    from slices of the in-memory test images (no data loader: they are already uint8 arrays)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, keys: np.ndarray,
                 corruption: tuple[str, int] | None, *, seed: int, input_size: int,
                 batch_size: int, device: torch.device):
        self.images, self.labels, self.keys = images, labels, keys
        self.corruption, self.seed, self.input_size = corruption, seed, input_size
        self.batch_size, self.device = int(batch_size), torch.device(device)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.labels), self.batch_size):
            stop = start + self.batch_size
            clean = torch.from_numpy(np.ascontiguousarray(self.images[start:stop])).to(self.device)
            inputs = corrupted_test_batch(clean, self.keys[start:stop], self.corruption,
                                          seed=self.seed, input_size=self.input_size)
            yield inputs, torch.as_tensor(self.labels[start:stop], dtype=torch.int64)


def evaluate_batched_on_device(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
                               keys: np.ndarray, corruption: tuple[str, int] | None, *, seed: int,
                               input_size: int, batch_size: int, device: torch.device,
                               desc: str = "eval", progress: bool = False) -> float:
    """Top-1 accuracy (percent) of ``model`` on ``images`` (N, H, W, 3) uint8 with
    ``corruption`` applied on ``device`` batch by batch (see :func:`corrupted_test_batch`)."""
    batches = _DeviceBatches(images, labels, keys, corruption, seed=seed, input_size=input_size,
                             batch_size=batch_size, device=device)
    top1, _ = accuracy_and_loss(model, batches, device, desc=desc, progress=progress)
    return top1
