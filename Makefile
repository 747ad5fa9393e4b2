# Robustness Transfer Benchmark: `make demo` runs the embedded default, `make test` the tests.
# Both set up .venv/ first (idempotent: seconds when it is already up to date).
PY := .venv/bin/python
.PHONY: setup demo test test-fast bench bench-mmdet bench-grid gpu-smoke clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m robust_transfer.cli demo --out outputs/demo

# One OpenMP thread per process: the end-to-end tests run several framework processes at once
# on 2 cores, where oversubscribed threads made small convolutions up to 60x slower.
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/bench_corruptions.py

bench-mmdet: setup
	$(PY) bench/bench_mmdet_robustness.py

# Images/s of the whole robustness grid against model-only inference (overhead goal < 10 % on a
# GPU: add BENCH_GRID_ARGS="--device cuda --amp" there).
bench-grid: setup
	$(PY) bench/bench_grid_overhead.py $(BENCH_GRID_ARGS)

# Train and evaluate the three tiny models on a GPU and compare with the CPU (issue 12). It runs
# its own set-up (after checking for a GPU: without one it says it skipped and exits 0).
gpu-smoke:
	bash scripts/gpu_smoke.sh

clean:
	rm -rf outputs work_dirs .pytest_cache
