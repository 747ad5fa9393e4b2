"""The x-axis of the report's correlation for a suite: each backbone's ImageNet robustness from
the suite itself (its entries' ``imagenet_robustness``, or the stand-ins' measured table), and
for backbones without one, from the suite's ``imagenet_robustness_file`` (what
``robust-transfer imagenet-c`` writes). Numbers of two different metrics are never mixed.

``python -m robust_transfer.study.imagenet_numbers OUT BASE FILL`` writes the ``{metric,
values}`` JSON that ``robust-transfer report --imagenet-robustness`` reads."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def merged_numbers(base: Path, fill: Path) -> dict:
    """``{metric, values}``: the numbers of ``base`` (a suite or a table), and those of
    ``fill`` for the backbones ``base`` has none for. A ValueError when both hold numbers of
    different metrics."""
    from ..report import load_imagenet_robustness

    values, metric = load_imagenet_robustness(base)
    if not fill.is_file():  # not measured yet: the report correlates what there is
        return {"metric": metric, "values": values}
    extra, extra_metric = load_imagenet_robustness(fill)
    missing = {k: v for k, v in extra.items() if k not in values}
    if missing and values and extra_metric != metric:
        raise ValueError(f"{fill} holds {extra_metric!r} but the suite's numbers are {metric!r}: "
                         "measure every backbone the same way (or give the suite's numbers)")
    return {"metric": metric if values else extra_metric, "values": {**values, **missing}}


def main(argv: list[str] | None = None) -> int:
    """Write the merged table; one line and exit status 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the {metric, values} JSON to write")
    parser.add_argument("base", help="the suite YAML, or the stand-ins' robustness table")
    parser.add_argument("fill", help="the suite's imagenet_robustness_file")
    args = parser.parse_args(argv)
    try:
        table = merged_numbers(Path(args.base), Path(args.fill))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
