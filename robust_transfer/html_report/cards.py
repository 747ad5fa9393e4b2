"""Per-model JSON cards in the spirit of RobustBench's ``model_info`` files: one file per
evaluated model, named by its stable id, numbers as numbers (fractions of the metric's full
scale, as in the results files), with where the backbone's checkpoint came from."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..backbones.catalogue import get_backbone
from ..metrics import corruption_error_for_dataset
from ..results import cells_by_int_severity
from .inputs import Entry

CARD_SCHEMA = "robust-transfer/model-card"
CARD_VERSION = 1


def backbone_provenance(backbone_id: str | None) -> dict:
    """What the backbone catalogue knows of the ImageNet checkpoint (URL, sha256, source);
    backbones outside it (stand-ins, custom ones) say so instead of guessing."""
    try:
        entry = get_backbone(backbone_id)
    except ValueError:
        return {"id": backbone_id, "in_catalogue": False,
                "note": "not in robust_transfer.backbones.catalogue: provenance unknown to the report"}
    return {"id": entry.id, "in_catalogue": True, "label": entry.label, "arch": entry.arch,
            "format": entry.format, "checkpoint": entry.checkpoint, "url": entry.url,
            "sha256": entry.sha256, "source": entry.source}


def corruption_error(entry: Entry) -> dict | None:
    """The corruption error fit for the entry's data set (classification only), labelled."""
    if entry.task != "classification":
        return None
    label, value = corruption_error_for_dataset(
        cells_by_int_severity(entry.results), entry.metric, entry.dataset, entry.scale)
    return None if value is None else {"label": label, "value": value}


def model_card(entry: Entry) -> dict:
    """The card of one evaluated model."""
    r = entry.results
    return {
        "schema": CARD_SCHEMA, "schema_version": CARD_VERSION,
        "id": entry.id, "name": entry.label, "model": r["model"], "task": entry.task,
        "dataset": r.get("dataset"), "transfer_mode": r.get("transfer_mode"),
        "prime": entry.mode.endswith("+prime"),
        "backbone": backbone_provenance(r.get("backbone")),
        "checkpoint": {"path": r.get("checkpoint"), "sha256": r.get("checkpoint_sha256")},
        "config": r.get("config"), "seed": r.get("seed"), "backend": r.get("backend"),
        "seed_scheme": r.get("seed_scheme"), "versions": r.get("versions", {}),
        "metric_scale": entry.scale, "headline_metric": entry.metric,
        "clean": {m: s.P for m, s in entry.summaries.items()},
        "corrupted": {m: s.mPC for m, s in entry.summaries.items()},
        "relative": {m: s.rPC for m, s in entry.summaries.items()},
        "metrics": {m: s.as_dict() for m, s in entry.summaries.items()},
        "corruption_error": corruption_error(entry),
        "results_file": str(entry.source) if entry.source else None,
    }


def write_cards(entries: Sequence[Entry], out_dir: str | Path) -> list[Path]:
    """Write one ``<id>.json`` card per entry into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in entries:
        path = out / f"{entry.id}.json"
        path.write_text(json.dumps(model_card(entry), indent=1) + "\n")
        written.append(path)
    return written
