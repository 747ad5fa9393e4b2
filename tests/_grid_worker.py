"""A real process running a robustness grid with a deterministic fake evaluator.

Used by the SIGKILL / resume tests: ``python _grid_worker.py RESULTS.json [--delay S]``.
"""
import argparse
import hashlib
import time

from robust_transfer.grid import build_cells, run_grid
from robust_transfer.results import new_results


def fake_metrics(corruption: str, severity: int) -> dict:
    digest = hashlib.sha256(f"{corruption}/{severity}".encode()).digest()
    return {"acc": 0.9 - 0.1 * severity + digest[0] / 2550.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--shard", default=None)
    args = parser.parse_args()
    from robust_transfer.grid import parse_shard, select_shard

    cells = select_shard(build_cells("all", range(6)), *parse_shard(args.shard))
    results = new_results(task="classification", model="fake", metrics=["acc"], seed=0)

    def evaluate(cell):
        time.sleep(args.delay)
        return fake_metrics(cell.corruption, cell.severity)

    run_grid(cells, evaluate, results, args.path, resume=True, progress=False)


if __name__ == "__main__":
    main()
