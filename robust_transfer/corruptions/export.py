"""Write corrupted copies of an image folder in the ImageNet-C layout, resumably.

``OUT/<corruption>/<severity>/<relative path>``, plus ``OUT/manifest.json``: the seed, backend,
seed scheme, image key rule and output format; ``images`` (each input's relative path -> its
output's relative path inside ``<corruption>/<severity>/``) and ``files`` (every written file,
relative to OUT -> its SHA-256).

Each image's key (with the seed, corruption and severity it fixes every random draw) is its file
name (``IMAGE_KEY = "basename"``), the key the detection and segmentation tools' ``Corrupt``
transform uses, so a tree written here holds the very images those tools corrupt on the fly
(their ``--corrupted-root`` reads it). The noise of an image does not depend on where the folder
lives or on the order files are visited; two files of the same name in different subfolders get
the same draws. (Manifest version 1 keyed images by their relative path; its trees are redone.)

File formats: ``output_format="same"`` (the default) keeps the input's extension. PNG (and other lossless formats) are
written losslessly (WebP too); JPEG outputs are written with quality 95 and 4:4:4 chroma (no subsampling)
so that the re-encoding adds as little distortion as possible on top of the corruption itself
(ImageNet-C's own JPEGs were written by PIL at its default quality; we prefer to keep the
corruption, not the container, as the dominant change). Images are read as RGB; grey images
(mode L) stay grey. ``output_format="png"`` writes every output as a lossless PNG
(``<relative path without suffix>.png``) from the image read as RGB (grey replicated, alpha
dropped, as OpenCV's colour loading does): the form the tools' ``--corrupted-root`` needs for
results identical to corrupting on the fly.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from . import SEVERITIES, corrupt, resolve_corruptions, seed_scheme

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
JPEG_QUALITY = 95
MANIFEST_NAME = "manifest.json"
MANIFEST_EVERY = 50  # files between manifest checkpoints
_MANIFEST_VERSION = 2
IMAGE_KEY = "basename"  # how an image's key is made from its path (the Corrupt transform's rule)
OUTPUT_FORMATS = ("same", "png")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and os.replace: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _encode(image: np.ndarray, suffix: str) -> bytes:
    """Encode in the format of the input's extension (JPEG q95 4:4:4; WebP lossless)."""
    buffer = BytesIO()
    pil = Image.fromarray(image)
    if suffix in (".jpg", ".jpeg"):
        pil.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    elif suffix == ".webp":
        pil.save(buffer, format="WEBP", lossless=True)
    else:
        pil.save(buffer, format=Image.registered_extensions()[suffix])
    return buffer.getvalue()


def _read_image(path: Path, colour: bool = False) -> np.ndarray:
    with Image.open(path) as pil:
        if pil.mode not in ("L", "RGB") or (colour and pil.mode != "RGB"):
            pil = pil.convert("RGB")
        return np.asarray(pil)


def image_key(relative: Path) -> str:
    """The key of an image's random stream: its file name (see ``IMAGE_KEY``)."""
    return relative.name


def output_relative(relative: Path, output_format: str) -> str:
    """Where an input (relative to the input folder) goes inside ``<corruption>/<severity>/``."""
    return (relative.with_suffix(".png") if output_format == "png" else relative).as_posix()


def list_images(in_dir: Path) -> list[Path]:
    """Image files below ``in_dir`` (by extension), sorted, as paths relative to ``in_dir``."""
    return sorted(
        path.relative_to(in_dir)
        for path in in_dir.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def _load_manifest(path: Path, identity: dict) -> dict:
    """The manifest to resume, or a fresh one when there is none, it is of another version, or
    it was written with another seed, backend, seed scheme or format (its files are redone)."""
    if path.is_file():
        manifest = json.loads(path.read_text())
        if manifest.get("version") == _MANIFEST_VERSION and \
                all(manifest.get(k) == v for k, v in identity.items()):
            return manifest
    return {"version": _MANIFEST_VERSION, **identity, "images": {}, "files": {}}


def _write_manifest(path: Path, manifest: dict) -> None:
    _atomic_write_bytes(path, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))


def _is_done(out_dir: Path, relative: str, files: dict) -> bool:
    """An output counts as done if the manifest lists it and the file still has that checksum."""
    expected = files.get(relative)
    target = out_dir / relative
    return expected is not None and target.is_file() and _sha256(target) == expected


def corrupt_directory(in_dir, out_dir, corruptions="benchmark", severities: Iterable[int] = SEVERITIES,
                      seed: int = 0, backend: str = "numpy", progress: bool = True,
                      output_format: str = "same") -> dict:
    """Corrupt every image below ``in_dir`` with each corruption and severity into ``out_dir``.

    Resumable: outputs already in the manifest with a matching checksum are skipped; the manifest
    is rewritten atomically every ``MANIFEST_EVERY`` new files and at the end. Returns a summary
    ``{"written": n, "skipped": n, "total": n, "manifest": path}``. ``output_format``: ``"same"``
    (the input's format) or ``"png"`` (lossless, colour; see the module docstring).
    """
    from tqdm import tqdm

    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise ValueError(f"input folder {in_dir} does not exist")
    names = resolve_corruptions(corruptions)
    severities = [int(s) for s in severities]
    for severity in severities:
        if severity not in SEVERITIES:
            raise ValueError(f"severities must be in {list(SEVERITIES)}, got {severity}")
    images = list_images(in_dir)
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found below {in_dir}")

    manifest_path = out_dir / MANIFEST_NAME
    identity = dict(seed=seed, backend=backend, seed_scheme=seed_scheme(backend),
                    image_key=IMAGE_KEY, output_format=output_format)
    manifest = _load_manifest(manifest_path, identity)
    manifest.update(corruptions=names, severities=severities)
    files, outputs = manifest["files"], manifest["images"]
    written = skipped = pending = 0
    total = len(images) * len(names) * len(severities)
    with tqdm(total=total, disable=not progress, unit="img", desc="corrupt-dir") as bar:
        for relative in images:
            key = image_key(relative)
            target = outputs[relative.as_posix()] = output_relative(relative, output_format)
            clean = None  # read lazily: a fully resumed image is never decoded
            for name in names:
                for severity in severities:
                    out_rel = f"{name}/{severity}/{target}"
                    if _is_done(out_dir, out_rel, files):
                        skipped += 1
                    else:
                        if clean is None:
                            clean = _read_image(in_dir / relative, colour=output_format == "png")
                        image = corrupt(clean, name, severity, seed=seed, key=key, backend=backend)
                        data = _encode(image, Path(target).suffix.lower())
                        _atomic_write_bytes(out_dir / out_rel, data)
                        files[out_rel] = hashlib.sha256(data).hexdigest()
                        written += 1
                        pending += 1
                        if pending >= MANIFEST_EVERY:
                            _write_manifest(manifest_path, manifest)
                            pending = 0
                    bar.update(1)
    _write_manifest(manifest_path, manifest)
    return {"written": written, "skipped": skipped, "total": total, "manifest": str(manifest_path)}
