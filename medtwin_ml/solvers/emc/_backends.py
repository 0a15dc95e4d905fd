"""Array backends: the same update code runs on numpy arrays or torch tensors.

The engine writes its updates with slicing, arithmetic and in-place operators that
numpy arrays and torch tensors share; a backend only creates arrays, moves them
to and from numpy and scatters values at flat indices. ``numba`` is a third, faster
CPU backend: numpy arrays whose bulk curl updates run in compiled, threaded loops
(:mod:`medtwin_ml.solvers.emc._numba_kernels`).

torch is imported only when a torch backend is made, so ``import medtwin_ml`` never
pulls it in.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

__all__ = ["Backend", "make_backend"]

logger = logging.getLogger(__name__)

BackendName = Literal["numpy", "torch", "numba"]


class Backend:
    """numpy arrays (the reference backend)."""

    name = "numpy"
    fused = False

    def __init__(self, dtype: str = "float64"):
        self.dtype = np.dtype(dtype)
        self.device = "cpu"

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return np.zeros(shape, dtype=self.dtype)

    def asarray(self, a: Any) -> Any:
        return np.ascontiguousarray(a, dtype=self.dtype)

    def index(self, idx: np.ndarray) -> Any:
        return np.ascontiguousarray(idx, dtype=np.int64)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)

    def add_at(self, field: Any, idx: Any, values: Any) -> None:
        """``field.flat[idx] += values`` for unique ``idx``."""
        flat = field.reshape(-1)
        flat[idx] += values

    def synchronize(self) -> None:
        return None


class NumbaBackend(Backend):
    """numpy arrays with compiled, threaded curl updates (needs numba)."""

    name = "numba"
    fused = True

    def __init__(self, dtype: str = "float32", threads: int = 1):
        super().__init__(dtype)
        import numba

        from medtwin_ml.solvers.emc import _numba_kernels

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        self.kernels = _numba_kernels


class TorchBackend(Backend):
    """torch tensors on the CPU or a CUDA device."""

    name = "torch"

    def __init__(self, dtype: str = "float32", device: str = "cpu"):
        import torch

        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
        self.device = device
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.torch.zeros(shape, dtype=self.dtype, device=self.device)

    def asarray(self, a: Any) -> Any:
        return self.torch.as_tensor(
            np.ascontiguousarray(a), dtype=self.dtype, device=self.device
        )

    def index(self, idx: np.ndarray) -> Any:
        return self.torch.as_tensor(
            np.ascontiguousarray(idx, dtype=np.int64), device=self.device
        )

    def to_numpy(self, a: Any) -> np.ndarray:
        if isinstance(a, self.torch.Tensor):
            return a.detach().to("cpu", self.torch.float64).numpy()
        return np.asarray(a, dtype=np.float64)

    def add_at(self, field: Any, idx: Any, values: Any) -> None:
        field.view(-1).index_add_(0, idx, values)

    def synchronize(self) -> None:
        if self.device != "cpu":
            self.torch.cuda.synchronize()


def make_backend(
    name: BackendName, precision: str = "auto", device: str = "cpu", threads: int = 1
) -> Backend:
    """A backend by name; ``precision="auto"`` is float64 for numpy, float32 else.

    ``threads``: worker threads of the numba kernels (other backends ignore it).
    """
    if precision == "auto":
        precision = "float64" if name == "numpy" else "float32"
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision {precision!r}; expected 'float32' or 'float64'")
    if name == "numpy":
        if device not in ("cpu", "auto"):
            raise ValueError(f"the numpy backend runs on the CPU only, not {device!r}")
        return Backend(precision)
    if name == "numba":
        if device not in ("cpu", "auto"):
            raise ValueError(f"the numba backend runs on the CPU only, not {device!r}")
        return NumbaBackend(precision, threads)
    if name == "torch":
        return TorchBackend(precision, device)
    raise ValueError(f"backend {name!r}; expected 'numpy', 'torch' or 'numba'")
