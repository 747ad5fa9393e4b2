"""The compiled mmcv ops, the frameworks and our compatibility shims on this torch/numpy."""
import subprocess
import sys

import numpy as np
import pytest
import torch


def test_mmcv_ops_run_on_cpu():
    from mmcv.ops import RoIAlign, nms

    features = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    rois = torch.tensor([[0, 0, 0, 4, 4], [1, 2, 2, 7, 7]], dtype=torch.float32)
    pooled = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(features, rois)
    assert pooled.shape == (2, 3, 2, 2) and torch.isfinite(pooled).all()
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2] and dets.shape == (2, 5)


def test_frameworks_import():
    import mmdet
    import mmengine
    import mmseg

    assert mmdet.__version__ == "3.3.0" and mmseg.__version__ == "1.2.2"
    assert mmengine.__version__ == "0.10.7"


def _runner_like_checkpoint(path):
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("test_environment")
    hub.update_scalar("train/loss", np.float64(0.5))
    hub.update_info("iter", 3)
    torch.save({"meta": {"seed": np.int64(3), "arr": np.zeros((2, 2), np.float32)},
                "state_dict": {"w": torch.ones(2)}, "message_hub": hub.state_dict()}, path)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    from mmengine.runner import CheckpointLoader

    from robust_transfer.openmmlab import apply_shims

    path = tmp_path / "ckpt.pth"
    _runner_like_checkpoint(path)
    # Without the shim (a fresh process), the restricted unpickler refuses the checkpoint.
    probe = subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(path)!r}, weights_only=True)"],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "Weights only load failed" in probe.stderr
    apply_shims()
    checkpoint = CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
    assert checkpoint["message_hub"]["log_scalars"]["train/loss"].mean() == 0.5


def test_shim_keeps_getattr_restricted(tmp_path):
    import pickle

    from robust_transfer.openmmlab import apply_shims

    apply_shims()

    import collections

    class Evil:
        def __reduce__(self):  # getattr on an allowed class other than HistoryBuffer
            return (getattr, (collections.OrderedDict, "fromkeys"))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_history_buffer_getattr_resolves_only_public_methods():
    import pickle

    from mmengine.logging import HistoryBuffer

    from robust_transfer.openmmlab.compat import _history_buffer_getattr

    assert _history_buffer_getattr(HistoryBuffer, "mean") is HistoryBuffer.mean
    for owner, name in ((HistoryBuffer, "__init__"), (HistoryBuffer, "_log_history"), (dict, "fromkeys")):
        with pytest.raises(pickle.UnpicklingError):
            _history_buffer_getattr(owner, name)
