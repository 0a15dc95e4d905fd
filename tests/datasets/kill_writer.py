"""Run a generation that kills itself with SIGKILL at a chosen point of the writing.

Used by the resume tests as a child process::

    python -m tests.datasets.kill_writer WORKSPACE CONFIG_JSON POINT N

``POINT`` names the step to interrupt and ``N`` which call of it:

* ``array``: after the N-th Zarr array is written, in the middle of a shard (the
  shard's temporary folder holds some arrays, not all);
* ``record``: before the N-th shard is recorded (the shard folder is complete and
  renamed into place, but the progress record does not list it);
* ``finish``: before the complete manifest is written (every shard recorded).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def _killing(original, n_calls: int, *, after: bool):
    """``original``, sending SIGKILL to this process on its ``n_calls``-th call."""
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n_calls and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls == n_calls and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


def main(argv: list[str]) -> None:
    root, config_json, point, n = argv
    from medtwin_ml.datasets import DatasetConfig, generate_dataset, store
    from medtwin_ml.workspace import Workspace
    from tests.datasets.toy_twin import register_toy

    register_toy()
    cls = store.DatasetWriter
    if point == "array":
        store._write_array = _killing(store._write_array, int(n), after=True)
    elif point == "record":
        cls._record_shard = _killing(cls._record_shard, int(n), after=False)
    elif point == "finish":
        cls.finish = _killing(cls.finish, int(n), after=False)
    else:
        raise SystemExit(f"unknown kill point {point!r}")
    config = DatasetConfig.model_validate(json.loads(config_json))
    generate_dataset(config, Workspace(Path(root)), scheduler="sync")
    raise SystemExit("the generation finished without being killed")


if __name__ == "__main__":
    main(sys.argv[1:])
