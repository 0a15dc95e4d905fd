"""The what-if API over ONNX bundles: FastAPI and onnxruntime, no torch.

Public: :func:`create_app`, :class:`ServingSettings`, :class:`ApiKeys`. Run it with
``medtwin serve``.
"""

from __future__ import annotations

from serving.app import ServingSettings, create_app
from serving.security import ApiKeys

__all__ = ["ApiKeys", "ServingSettings", "create_app"]
