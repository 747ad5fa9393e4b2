"""``--corrupted-root DIR``: read each grid cell's corrupted images from a pre-generated tree.

The tree is what ``robust-transfer corrupt-dir --format png`` writes
(:mod:`robust_transfer.corruptions.export`): ``DIR/<corruption>/<severity>/<name>.png`` plus
``DIR/manifest.json``. Its images are keyed by file name, as the ``Corrupt`` transform keys
them, so with the same seed and backend they are the very images the tools make on the fly, and
the results are identical (lossless PNG; the clean JPEG decoded alike by Pillow and OpenCV, as on
the tested stack).

How it plugs in: :func:`enable_pregenerated_images` puts a :class:`UseCorruptedFile` step right
before the test pipeline's image-loading step. It does nothing until
:func:`robust_transfer.openmmlab.pipeline.insert_corrupt_transform` (called per cell by the
evaluator) fills in the cell's corruption and severity instead of inserting ``Corrupt``; then it
points ``img_path`` at the corrupted file, which the loader reads.

Before any model is built, :func:`check_tree_covers_grid` compares the manifest with what the run
needs (seed, backend and its seed scheme, every image of the test set in every cell) and raises
one ``ValueError`` line listing what is missing.
"""
from __future__ import annotations

import functools
import importlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

try:  # mmcv is a dependency of the frameworks; the module stays importable without it.
    from mmcv.transforms import BaseTransform
except ImportError:  # pragma: no cover - exercised only without mmcv
    BaseTransform = object  # type: ignore[assignment,misc]

from ..corruptions import seed_scheme
from ..corruptions.export import IMAGE_KEY, MANIFEST_NAME
from ..grid import Cell

STEP_TYPE = "UseCorruptedFile"
_MANIFEST_VERSION = 2  # the corrupt-dir manifest this reader understands
_SHOWN = 5  # missing items named in an error before "... and N more"


class CorruptedTree:
    """A pre-generated tree: its manifest, read once, and where each corrupted image is."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        path = self.root / MANIFEST_NAME
        if not self.root.is_dir():
            raise ValueError(f"--corrupted-root {root}: not a folder")
        if not path.is_file():
            raise ValueError(f"--corrupted-root {root}: no {MANIFEST_NAME} (write the tree with "
                             "`robust-transfer corrupt-dir IMAGES DIR --format png`)")
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"--corrupted-root {root}: unreadable {MANIFEST_NAME} ({error})") from None
        if manifest.get("version") != _MANIFEST_VERSION or manifest.get("image_key") != IMAGE_KEY:
            raise ValueError(f"--corrupted-root {root}: manifest version {manifest.get('version')!r} "
                             f"(images keyed by {manifest.get('image_key', 'relative path')}); this "
                             f"needs version {_MANIFEST_VERSION} keyed by {IMAGE_KEY}: rerun corrupt-dir")
        self.manifest = manifest
        self.files = manifest.get("files", {})
        by_name: dict[str, list[str]] = {}
        for source, target in manifest.get("images", {}).items():
            by_name.setdefault(Path(source).name, []).append(target)
        self.targets = by_name  # file name of the clean image -> output path(s) in a cell folder

    def relative_path(self, name: str, corruption: str, severity: int) -> str:
        """``<corruption>/<severity>/<target>`` of the clean image named ``name``;
        ``KeyError`` when the tree lacks it, ``ValueError`` when the name is ambiguous."""
        targets = self.targets.get(name)
        if not targets:
            raise KeyError(name)
        if len(targets) > 1:
            raise ValueError(f"--corrupted-root {self.root}: {len(targets)} images named {name} "
                             f"({', '.join(sorted(targets))}); cannot tell which one the dataset means")
        relative = f"{corruption}/{int(severity)}/{targets[0]}"
        if relative not in self.files:
            raise KeyError(relative)
        return relative

    def path(self, name: str, corruption: str, severity: int) -> str:
        """The absolute path of the corrupted image (see :meth:`relative_path`)."""
        return str(self.root / self.relative_path(name, corruption, severity))


@functools.lru_cache(maxsize=4)
def _cached_tree(root: str, manifest_mtime_ns: int) -> CorruptedTree:
    return CorruptedTree(root)


def open_tree(root: str | os.PathLike) -> CorruptedTree:
    """The tree at ``root``, its manifest parsed once per process (and again if it changes)."""
    manifest = Path(root) / MANIFEST_NAME
    mtime = manifest.stat().st_mtime_ns if manifest.is_file() else 0
    return _cached_tree(str(Path(root).resolve()), mtime)


def _listed(items: Sequence[str]) -> str:
    more = f" ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def check_tree_covers_grid(tree: CorruptedTree, cells: Iterable[Cell], image_names: Iterable[str],
                           *, seed: int, backend: str) -> None:
    """``ValueError`` (one line, listing what is missing) unless the tree was written with this
    ``seed`` and ``backend`` (and its seed scheme) and holds every image in every corrupted cell."""
    manifest = tree.manifest
    wanted = {"seed": int(seed), "backend": backend, "seed_scheme": seed_scheme(backend)}
    differ = [f"{k} {manifest.get(k)!r} (this run: {v!r})" for k, v in wanted.items() if manifest.get(k) != v]
    if differ:
        raise ValueError(f"--corrupted-root {tree.root} was written with {', '.join(differ)}: its images "
                         "are not the ones this run would make")
    names = sorted(set(image_names))
    corrupted = [cell for cell in cells if not cell.is_clean]
    missing_cells, missing_images = [], set()
    for cell in corrupted:
        absent = []
        for name in names:
            try:
                tree.relative_path(name, cell.corruption, cell.severity)
            except KeyError:
                absent.append(name)
        if absent:
            missing_cells.append(f"{cell} ({len(absent)} of {len(names)} images)")
            missing_images.update(absent)
    if missing_cells:
        raise ValueError(f"--corrupted-root {tree.root} lacks images the grid needs: cells "
                         f"{_listed(missing_cells)}; images e.g. {_listed(sorted(missing_images))}")


class UseCorruptedFile(BaseTransform):
    """Point ``img_path`` at the pre-generated corrupted copy of the image (before loading).

    Required Keys:

    - img_path (str) -- its file name finds the image in the tree

    Modified Keys:

    - img_path (str) -- the corrupted file (unchanged while ``corruption`` is None: clean cell)

    Added Keys:

    - corruption (dict: ``name``, ``severity``, ``key``, ``source``)

    Args:
        root (str): the tree (``robust-transfer corrupt-dir --format png`` output).
        corruption (str | None): the cell's corruption; None passes the clean image through.
        severity (int | None): the cell's severity.
    """

    def __init__(self, root: str, corruption: str | None = None, severity: int | None = None) -> None:
        self.root = str(root)
        self.corruption = corruption
        self.severity = None if severity is None else int(severity)

    def transform(self, results: dict) -> dict:
        if self.corruption is None:
            return results
        name = os.path.basename(str(results["img_path"]))
        try:
            path = open_tree(self.root).path(name, self.corruption, self.severity)
        except KeyError:
            raise FileNotFoundError(f"--corrupted-root {self.root}: no {self.corruption}/{self.severity} "
                                    f"image for {name}") from None
        results["img_path"] = path
        results["corruption"] = dict(name=self.corruption, severity=self.severity, key=name, source=path)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={self.root!r}, corruption={self.corruption!r}, "
                f"severity={self.severity})")


# ----------------------------------------------------------------------------- pipelines


def is_pregenerated_step(step: Any) -> bool:
    """True for the :class:`UseCorruptedFile` step of a pipeline config."""
    return isinstance(step, Mapping) and str(step.get("type", "")).rsplit(".", 1)[-1] == STEP_TYPE


def fill_pregenerated_step(steps: list, corrupt_cfg: Mapping) -> bool:
    """Give the pipeline's :class:`UseCorruptedFile` step (in place) the cell's corruption and
    severity from a ``Corrupt`` config; False when the pipeline has no such step."""
    for step in steps:
        if is_pregenerated_step(step):
            step.update(corruption=corrupt_cfg["corruption"], severity=int(corrupt_cfg["severity"]))
            return True
    return False


def enable_pregenerated_images(cfg: Any, root: str | os.PathLike, registry_scope: str) -> None:
    """Put a :class:`UseCorruptedFile` step before the image loading of every test pipeline of
    ``cfg`` (in place) and register the transform in ``registry_scope``'s ``TRANSFORMS``."""
    from .pipeline import _rewrite_pipelines, find_image_loading_step

    registry = importlib.import_module(f"{registry_scope}.registry").TRANSFORMS
    registry.register_module(name=STEP_TYPE, module=UseCorruptedFile, force=True)
    step = dict(type=STEP_TYPE, root=str(Path(root).resolve()))

    def rewrite(pipeline: list) -> list:
        steps = [s for s in pipeline if not is_pregenerated_step(s)]
        steps.insert(find_image_loading_step(steps), dict(step))
        return steps

    if not _rewrite_pipelines(cfg.test_dataloader.dataset, rewrite):
        raise ValueError("the test dataset config has no 'pipeline' (nor a wrapped dataset with one)")


def dataset_image_names(cfg: Any, registry_scope: str) -> list[str]:
    """The file names of the test set's images: the dataset is built (annotations parsed, no
    model) in ``registry_scope``."""
    from mmengine.registry import DefaultScope

    datasets = importlib.import_module(f"{registry_scope}.registry").DATASETS
    with DefaultScope.overwrite_default_scope(registry_scope):
        dataset = datasets.build(cfg.test_dataloader.dataset)
    return [os.path.basename(str(dataset.get_data_info(i)["img_path"])) for i in range(len(dataset))]


def prepare_corrupted_root(args: Any, cfg: Any, cells: Sequence[Cell], registry_scope: str) -> None:
    """``--corrupted-root``: check the tree against the grid and set the config up (in place);
    ``ValueError`` when the tree does not cover the run."""
    tree = open_tree(args.corrupted_root)
    seed = 0 if args.seed is None else int(args.seed)
    if any(not cell.is_clean for cell in cells):
        check_tree_covers_grid(tree, cells, dataset_image_names(cfg, registry_scope),
                               seed=seed, backend=args.backend)
    enable_pregenerated_images(cfg, tree.root, registry_scope)


def corrupted_root_defaults(args: Any) -> None:
    """With ``--corrupted-root``, ``--corrupt-on auto`` means pipeline and ``--backend auto`` the
    backend the tree was written with (so the results name the backend of their images);
    ``ValueError`` with ``--corrupt-on batch``."""
    if not getattr(args, "corrupted_root", None):
        return
    if args.corrupt_on == "batch":
        raise ValueError("--corrupted-root reads corrupted files in the data pipeline: it cannot be "
                         "combined with --corrupt-on batch")
    if args.corrupt_on in (None, "auto"):
        args.corrupt_on = "pipeline"
    if args.backend in (None, "auto"):
        try:
            args.backend = open_tree(args.corrupted_root).manifest.get("backend", "numpy")
        except ValueError:
            args.backend = "numpy"  # (the tree's error is raised by prepare_corrupted_root)
