"""Readers for CIFAR-10/100 (the python-pickle release) and CIFAR-10-C / CIFAR-100-C (.npy).

Nothing is downloaded: the files must be on disk, and a missing file raises
:class:`DatasetNotFoundError` with the expected layout and where to get it.

CIFAR-10 (``cifar-10-python.tar.gz``) unpacks to::

    <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

CIFAR-100 (``cifar-100-python.tar.gz``) to ``<root>/cifar-100-python/{train,test,meta}``.
``root`` may also be the inner folder itself. Each batch is a pickled dict with ``data`` (N x 3072
uint8, the R, G and B planes of each 32x32 image one after the other) and ``labels`` (CIFAR-10)
or ``fine_labels`` (CIFAR-100); the meta file lists ``label_names`` / ``fine_label_names``.
The pickles are read with an unpickler that only accepts those plain containers and numpy
arrays, so a tampered file cannot run code.

CIFAR-10-C (Hendrycks & Dietterich, 2019) is one folder of ``<corruption>.npy`` files, each
50,000 x 32 x 32 x 3 uint8 = severities 1..5 x the 10,000 test images in test-set order, and
``labels.npy`` (50,000 labels: the test labels repeated five times). CIFAR-100-C is the same.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR10C_URL = "https://zenodo.org/record/2535967 (CIFAR-10-C.tar)"
CIFAR100C_URL = "https://zenodo.org/record/3555552 (CIFAR-100-C.tar)"


@dataclass(frozen=True)
class CifarLayout:
    """Where the files of one CIFAR variant live and what their pickles are keyed by."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    url: str
    corrupted_url: str


LAYOUTS = {
    "cifar10": CifarLayout("cifar10", "cifar-10-batches-py",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                           "batches.meta", "labels", "label_names", 10, CIFAR10_URL, CIFAR10C_URL),
    "cifar100": CifarLayout("cifar100", "cifar-100-python", ("train",), ("test",), "meta",
                            "fine_labels", "fine_label_names", 100, CIFAR100_URL, CIFAR100C_URL),
}

#: ImageNet-C/CIFAR-10-C images per severity in the released files.
CIFAR_TEST_SIZE = 10_000


class DatasetNotFoundError(FileNotFoundError):
    """A data set (or one of its files) is not on disk; the message says what was expected."""


@dataclass
class ImageArrays:
    """A split held in memory: ``images`` (N, 32, 32, 3) uint8 RGB, ``labels`` (N,) int64."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def get_layout(dataset: str) -> CifarLayout:
    """The :class:`CifarLayout` of ``"cifar10"`` or ``"cifar100"``."""
    if dataset not in LAYOUTS:
        raise ValueError(f"unknown CIFAR dataset {dataset!r}; allowed: {', '.join(LAYOUTS)}")
    return LAYOUTS[dataset]


def _missing_message(layout: CifarLayout, root: Path, missing: list[str]) -> str:
    files = ", ".join((*layout.train_files, *layout.test_files, layout.meta_file))
    return (f"{layout.name} not found under {root}: missing {', '.join(missing)}. Expected "
            f"<data>/{layout.folder}/{{{files}}} (the python version of the data set, unpacked); "
            f"download {layout.url} and unpack it into the folder given as --data. "
            "Nothing is downloaded at run time.")


def find_cifar_folder(root: str | Path, dataset: str = "cifar10") -> Path:
    """The folder holding the batch files: ``root/<inner folder>`` or ``root`` itself."""
    layout = get_layout(dataset)
    root = Path(root)
    required = (*layout.train_files, *layout.test_files, layout.meta_file)
    for folder in (root / layout.folder, root):
        if all((folder / name).is_file() for name in required):
            return folder
    folder = root / layout.folder if (root / layout.folder).is_dir() else root
    missing = [name for name in required if not (folder / name).is_file()]
    raise DatasetNotFoundError(_missing_message(layout, root, missing))


class _CifarUnpickler(pickle.Unpickler):
    """Accepts only what CIFAR pickles contain: dicts, lists, strings, bytes and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        # protocol-2 pickles written by Python 3 store raw bytes as _codecs.encode(str, "latin1")
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch file")
        if module == "numpy.core.multiarray":  # numpy 2 moved it; avoid the deprecation path
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict:
    with open(path, "rb") as handle:
        try:
            # encoding="bytes": the released files are Python 2 pickles with byte-string keys
            document = _CifarUnpickler(handle, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise ValueError(f"{path}: not a CIFAR python batch file ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a CIFAR python batch file (a {type(document).__name__})")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in document.items()}


def _decode_names(names) -> list[str]:
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def read_cifar_batch(path: str | Path, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> ``(images (N, 32, 32, 3) uint8, labels (N,) int64)``."""
    path = Path(path)
    batch = _read_pickle(path)
    if "data" not in batch or label_key not in batch:
        raise ValueError(f"{path}: a CIFAR batch needs 'data' and {label_key!r} entries, "
                         f"found {sorted(batch)}")
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be N x 3072 uint8, got shape {data.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> HWC
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if len(labels) != len(images):
        raise ValueError(f"{path}: {len(images)} images but {len(labels)} labels")
    return np.ascontiguousarray(images), labels


def load_cifar(root: str | Path, dataset: str = "cifar10", train: bool = True) -> ImageArrays:
    """Read the train (all five batches, in order) or test split of CIFAR-10/100."""
    layout = get_layout(dataset)
    folder = find_cifar_folder(root, dataset)
    files = layout.train_files if train else layout.test_files
    parts = [read_cifar_batch(folder / name, layout.label_key) for name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    classes = _decode_names(_read_pickle(folder / layout.meta_file).get(layout.names_key, []))
    if labels.size and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise ValueError(f"{folder}: labels outside 0..{layout.num_classes - 1}")
    return ImageArrays(images, labels, classes)


# ----------------------------------------------------------------------------- CIFAR-10-C


def cifar_c_corruptions(root: str | Path) -> list[str]:
    """The corruption names a CIFAR-10-C/100-C folder holds (its ``.npy`` files but labels)."""
    return sorted(p.stem for p in Path(root).glob("*.npy") if p.stem != "labels")


def load_cifar_c(root: str | Path, corruption: str, severity: int, dataset: str = "cifar10",
                 *, mmap: bool = True) -> ImageArrays:
    """The test images of one corruption at one severity (1..5) from a CIFAR-10-C folder.

    The files hold the five severities one after the other; the block size is the file length
    / 5 (10,000 in the release, fewer in synthetic folders). ``mmap`` avoids reading the other
    severities from disk.
    """
    layout = get_layout(dataset)
    root = Path(root)
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"CIFAR-C severity must be 1..5, got {severity}")
    images_path, labels_path = root / f"{corruption}.npy", root / "labels.npy"
    for path in (images_path, labels_path):
        if not path.is_file():
            available = cifar_c_corruptions(root) if root.is_dir() else []
            raise DatasetNotFoundError(
                f"{path} not found. Expected a {layout.name.upper()}-C folder with "
                f"<corruption>.npy (5 x N x 32 x 32 x 3 uint8, severities 1..5 in order) and "
                f"labels.npy; download {layout.corrupted_url}. "
                f"Available here: {', '.join(available) or 'none'}")
    images = np.load(images_path, mmap_mode="r" if mmap else None)
    labels = np.load(labels_path, mmap_mode="r" if mmap else None)
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected N x 32 x 32 x 3 uint8, got "
                         f"{images.shape} {images.dtype}")
    if len(images) % 5 or len(labels) != len(images):
        raise ValueError(f"{images_path}: {len(images)} images and {len(labels)} labels; expected "
                         "equal counts, a multiple of 5 (five severities)")
    per_severity = len(images) // 5
    block = slice((int(severity) - 1) * per_severity, int(severity) * per_severity)
    return ImageArrays(np.ascontiguousarray(images[block]),
                       np.asarray(labels[block], dtype=np.int64), [])
