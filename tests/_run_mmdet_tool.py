"""TEST/BENCH-ONLY launcher: run one of the installed mmdet package's own tools
(``mmdet/.mim/tools/...``) on today's stack.

    python tests/_run_mmdet_tool.py analysis_tools/test_robustness.py ARGS...

Before the tool runs it
* makes imagecorruptions 1.1.2 work on numpy 2 / scikit-image 0.26 (tests/_imagecorruptions_compat.py;
  mmdet's Corrupt imports it when mmdet's transforms module is imported),
* applies our torch.load allow-list for mmengine checkpoints (robust_transfer.openmmlab.compat;
  torch >= 2.6 loads with weights_only=True),
* puts the ``.mim`` folder on sys.path, because the tool imports ``tools.analysis_tools.robustness_eval``.
Nothing else of ours is imported: mmdet's own ``Corrupt`` stays registered, unless the config's
``custom_imports`` brings in our plugin.
"""
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _imagecorruptions_compat import load_reference

    load_reference()
    from robust_transfer.openmmlab.compat import apply_shims

    apply_shims()
    import importlib.util

    mim = Path(importlib.util.find_spec("mmdet").origin).parent / ".mim"
    tool = mim / "tools" / sys.argv[1]
    sys.path.insert(0, str(mim))
    sys.argv = [str(tool)] + sys.argv[2:]
    runpy.run_path(str(tool), run_name="__main__")


if __name__ == "__main__":
    main()
