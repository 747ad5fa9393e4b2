"""Adapters to the OpenMMLab frameworks, and the compatibility shims they need on current
torch / numpy. Each shim is one small, named, tested function; :func:`apply_shims` applies all
of them and is idempotent. The framework plugins (mmdet, mmseg) call it on import."""
from .compat import allow_mmengine_checkpoint_globals, apply_shims

__all__ = ["allow_mmengine_checkpoint_globals", "apply_shims"]
