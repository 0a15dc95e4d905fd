"""The dataset store: checksummed shards written atomically, read with verification.

One dataset is one folder::

    <dataset>/
        manifest.json        what the dataset is; "complete": true only when finished
        progress.json        the writer's record of finished shards and their sha256
        coords.zarr/         the shared coordinates (e.g. time_min), stored once
        shards/
            shard-00000/
                inputs.parquet   one row per case (design, parameters, exact case JSON)
                summary.parquet  per-case scalar outcomes, when the twin reports them
                outputs.zarr/    one array per output, (n_cases_in_shard, *grid),
                                 one case per chunk, the shard's chunks in one
                                 file per array (Zarr v3 sharding codec)
            shard-00001/ ...

Writes are atomic at the level of a shard: a shard is written into a temporary folder
beside its final place, checksummed (:func:`medtwin_ml._io.sha256_tree`), renamed into
place, and only then recorded in ``progress.json`` (itself replaced atomically). A
writer killed at any point leaves either a recorded, complete shard or debris that the
next writer removes. ``manifest.json`` says ``"complete": true`` only once every shard
is recorded, so a reader never mistakes an interrupted dataset for a finished one.

Shard bytes depend only on their content: Zarr chunks use a fixed Zstandard level,
Parquet a fixed codec, and nothing stores a time stamp, so the same cases give the
same checksums however and whenever they were computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtwin_ml._io import sha256_tree, write_json_atomic
from medtwin_ml.errors import (
    ConfigError,
    DatasetError,
    DatasetIncompleteError,
    DatasetIntegrityError,
)
from medtwin_ml.twin import BatchResult, Case

__all__ = [
    "FORMAT",
    "Dataset",
    "DatasetWriter",
    "ShardSpan",
    "dataset_checksum",
    "open_dataset",
    "plan_shards",
]

logger = logging.getLogger(__name__)

FORMAT = "medtwin-dataset/1"
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
COORDS = "coords.zarr"
SHARDS = "shards"
INPUTS = "inputs.parquet"
SUMMARY = "summary.parquet"
OUTPUTS = "outputs.zarr"
_LOCK = ".writer.lock"
_TMP_PREFIX = ".tmp-"

# Zstandard at a fixed level: deterministic bytes for the same array, a good ratio on
# smooth trajectories, and fast enough that writing never dominates solving.
_ZSTD_LEVEL = 3
# Keys of the header that may change between an interrupted run and its resumption
# without changing a single stored byte.
_VOLATILE_KEYS = frozenset({"medtwin_ml_version"})
# Keys the store itself writes into the manifest, beside the header's.
_MANIFEST_KEYS = frozenset(
    {
        "format",
        "complete",
        "n_shards",
        "outputs",
        "coords",
        "coords_sha256",
        "shards",
        "dataset_sha256",
    }
)


@dataclass(frozen=True)
class ShardSpan:
    """The cases ``start <= case_id < stop`` stored as shard number ``index``."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}"

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_shards(n_cases: int, shard_size: int) -> list[ShardSpan]:
    """Consecutive spans of ``shard_size`` cases; the last one may be shorter."""
    if n_cases < 1 or shard_size < 1:
        raise ValueError(
            f"n_cases = {n_cases}, shard_size = {shard_size}; expected both >= 1"
        )
    return [
        ShardSpan(i, start, min(start + shard_size, n_cases))
        for i, start in enumerate(range(0, n_cases, shard_size))
    ]


def dataset_checksum(shards: Iterable[Mapping[str, Any]], coords_sha256: str) -> str:
    """The checksum a dataset is quoted by: sha256 over its ordered shard records.

    Each shard contributes ``name start stop sha256``; the coordinates' checksum
    closes the list. Equal checksums mean byte-identical stored data.
    """
    digest = hashlib.sha256()
    for s in shards:
        digest.update(f"{s['name']} {s['start']} {s['stop']} {s['sha256']}\n".encode())
    digest.update(f"coords {coords_sha256}\n".encode())
    return digest.hexdigest()


# -- writing --------------------------------------------------------------------------


class DatasetWriter:
    """Writes one dataset folder shard by shard, resuming where an earlier writer left.

    Opening a writer on a folder that already holds a dataset with the same header
    keeps every recorded shard whose checksum still matches, removes everything else
    (temporary folders of a killed writer, shards renamed but never recorded, shards
    that fail their checksum) and leaves the rest to :meth:`pending`. A header that
    differs from the stored one is refused with a :class:`ConfigError` naming the
    differing keys, unless ``overwrite`` is true, which starts the folder afresh.

    Only one writer may hold a folder at a time (an advisory file lock, released by
    the operating system when the process dies, however it dies).

    Args:
        path: the dataset folder.
        header: what the dataset is (twin, solver version, config, seed, domain,
            ``n_cases``, ``shard_size``, ...); JSON-ready. It becomes the head of
            the manifest.
        units: unit of each output or coordinate name, for the manifest.
        overwrite: discard a stored dataset whose header differs.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: Mapping[str, Any],
        *,
        units: Mapping[str, str] | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        self.header = json.loads(json.dumps(dict(header), allow_nan=False))
        clashing = sorted(set(self.header) & _MANIFEST_KEYS)
        if clashing:
            raise ValueError(f"header keys {clashing} are reserved by the manifest")
        self.units = dict(units or {})
        self.spans = plan_shards(int(header["n_cases"]), int(header["shard_size"]))
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire_lock(self.path / _LOCK)
        try:
            self._progress = self._prepare(overwrite)
        except BaseException:
            self.close()
            raise

    # -- opening and resuming ---------------------------------------------------------

    def _prepare(self, overwrite: bool) -> dict[str, Any]:
        manifest_path = self.path / MANIFEST
        if manifest_path.exists():
            stored = _read_json(manifest_path)
            differing = _header_diff(
                {k: stored[k] for k in self.header if k in stored}, self.header
            )
            if differing and not overwrite:
                raise ConfigError(
                    str(manifest_path),
                    [
                        (
                            key,
                            new,
                            f"{old!r} as stored in the existing dataset (pass "
                            "overwrite=True, or --overwrite, to replace it)",
                        )
                        for key, old, new in differing
                    ],
                )
            if differing:
                logger.info(
                    "overwriting dataset %s (%d keys differ)", self.path, len(differing)
                )
                self._clear()
                progress = _empty_progress()
            else:
                progress = self._load_progress(stored)
        else:
            unknown = sorted(
                p.name
                for p in self.path.iterdir()
                if p.name not in {_LOCK, PROGRESS, COORDS, SHARDS}
            )
            if unknown and not overwrite:
                raise DatasetError(
                    f"{self.path} is not empty and holds no dataset manifest "
                    f"(found {', '.join(unknown)}); choose another dataset name or "
                    "pass overwrite=True to replace the folder's content"
                )
            self._clear()
            progress = _empty_progress()

        progress = self._drop_unverified(progress)
        self._remove_debris(progress)
        if len(progress["shards"]) < len(self.spans) or not manifest_path.exists():
            # Whatever was there before, a reader must now see an unfinished dataset.
            self._write_manifest(complete=False, progress=progress)
        write_json_atomic(self.path / PROGRESS, progress)
        return progress

    def _load_progress(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The progress record; rebuilt from the manifest if it is gone."""
        path = self.path / PROGRESS
        if path.exists():
            progress = _read_json(path)
            for key, value in _empty_progress().items():
                progress.setdefault(key, value)
            return progress
        progress = _empty_progress()
        progress["shards"] = {
            s["name"]: {"start": s["start"], "stop": s["stop"], "sha256": s["sha256"]}
            for s in manifest.get("shards", [])
        }
        if manifest.get("coords_sha256"):
            progress["coords"] = {
                "sha256": manifest["coords_sha256"],
                "arrays": manifest["coords"],
            }
        if manifest.get("outputs"):
            progress["outputs"] = {
                o["name"]: {"grid": o["grid"], "dtype": o["dtype"]}
                for o in manifest["outputs"]
            }
        return progress

    def _drop_unverified(self, progress: dict[str, Any]) -> dict[str, Any]:
        by_name = {s.name: s for s in self.spans}
        kept = {}
        for name, record in progress["shards"].items():
            span = by_name.get(name)
            folder = self.path / SHARDS / name
            if span is None or (record["start"], record["stop"]) != (
                span.start,
                span.stop,
            ):
                logger.warning(
                    "dropping shard %s: not part of this dataset's plan", name
                )
                continue
            if not folder.is_dir():
                logger.warning("shard %s is recorded but missing; recomputing it", name)
                continue
            actual = sha256_tree(folder)
            if actual != record["sha256"]:
                logger.warning(
                    "shard %s fails its checksum (recorded %s, found %s); "
                    "recomputing it",
                    name,
                    record["sha256"],
                    actual,
                )
                continue
            kept[name] = record
        progress["shards"] = kept

        coords = progress.get("coords")
        if coords is not None:
            folder = self.path / COORDS
            if not folder.is_dir() or sha256_tree(folder) != coords["sha256"]:
                logger.warning(
                    "coordinates of %s fail their checksum; rewriting", self.path
                )
                progress["coords"] = None
        if progress.get("coords") is None and kept:
            # The coordinates come with a solved shard: solve one again.
            first = min(kept)
            logger.warning("recomputing %s to restore the coordinates", first)
            del kept[first]
        return progress

    def _remove_debris(self, progress: dict[str, Any]) -> None:
        """Remove what a killed writer may have left: anything not recorded."""
        shards = self.path / SHARDS
        shards.mkdir(exist_ok=True)
        for entry in shards.iterdir():
            if entry.name not in progress["shards"]:
                logger.info("removing unfinished %s", entry)
                _remove(entry)
        for entry in self.path.iterdir():
            if (
                entry.name.startswith(_TMP_PREFIX)
                or entry.name.startswith(f".{PROGRESS}.")
                or entry.name.startswith(f".{MANIFEST}.")
            ):
                _remove(entry)
        if progress.get("coords") is None and (self.path / COORDS).exists():
            _remove(self.path / COORDS)

    def _clear(self) -> None:
        for entry in self.path.iterdir():
            if entry.name != _LOCK:
                _remove(entry)

    # -- state ------------------------------------------------------------------------

    @property
    def finished(self) -> dict[str, str]:
        """sha256 of every finished shard, by shard name."""
        return {name: r["sha256"] for name, r in self._progress["shards"].items()}

    def pending(self) -> list[ShardSpan]:
        """The shards still to write, in order."""
        return [s for s in self.spans if s.name not in self._progress["shards"]]

    @property
    def n_done(self) -> int:
        """Cases in finished shards."""
        return sum(r["stop"] - r["start"] for r in self._progress["shards"].values())

    # -- writing ----------------------------------------------------------------------

    def write_shard(
        self, span: ShardSpan, inputs: pd.DataFrame, batch: BatchResult
    ) -> str:
        """Store one shard atomically and record it; returns its sha256.

        Args:
            span: which shard.
            inputs: one row per case of the shard, in case order.
            batch: the solver's result for those cases; every output has shape
                ``(span.size, *grid)`` with the same grid in every shard, and the
                coordinates equal those of every other shard.
        """
        self._check_batch(span, inputs, batch)
        self._ensure_coords(batch.coords)

        tmp = self.path / SHARDS / f"{_TMP_PREFIX}{span.name}-{uuid.uuid4().hex[:12]}"
        tmp.mkdir(parents=True)
        try:
            _write_parquet(tmp / INPUTS, inputs.reset_index(drop=True))
            if batch.summary is not None:
                _write_parquet(tmp / SUMMARY, batch.summary.reset_index(drop=True))
            group = _open_group(tmp / OUTPUTS, mode="w")
            for name in sorted(batch.outputs):
                _write_array(
                    group, name, np.asarray(batch.outputs[name]), per_case=True
                )
            _fsync_tree(tmp)
            sha = sha256_tree(tmp)
            final = self.path / SHARDS / span.name
            if final.exists():
                _remove(final)
            os.rename(tmp, final)
        except BaseException:
            _remove(tmp)
            raise
        _fsync_dir(self.path / SHARDS)
        self._record_shard(span, sha)
        return sha

    def _record_shard(self, span: ShardSpan, sha: str) -> None:
        self._progress["shards"][span.name] = {
            "start": span.start,
            "stop": span.stop,
            "sha256": sha,
        }
        write_json_atomic(self.path / PROGRESS, self._progress)
        logger.debug("shard %s written (%s)", span.name, sha)

    def _check_batch(
        self, span: ShardSpan, inputs: pd.DataFrame, batch: BatchResult
    ) -> None:
        if len(inputs) != span.size:
            raise DatasetError(
                f"{span.name}: {len(inputs)} input rows for {span.size} cases"
            )
        if not batch.outputs:
            raise DatasetError(f"{span.name}: the solver returned no outputs")
        if batch.summary is not None and len(batch.summary) != span.size:
            raise DatasetError(
                f"{span.name}: summary has {len(batch.summary)} rows for "
                f"{span.size} cases"
            )
        schema = {}
        for name, value in batch.outputs.items():
            array = np.asarray(value)
            if array.ndim < 1 or array.shape[0] != span.size:
                raise DatasetError(
                    f"{span.name}: output {name!r} has shape {array.shape}; "
                    f"expected ({span.size}, *grid), one row per case"
                )
            if array.dtype.kind not in "biuf":
                raise DatasetError(
                    f"{span.name}: output {name!r} has dtype {array.dtype}; "
                    "expected a numeric dtype"
                )
            schema[name] = {"grid": list(array.shape[1:]), "dtype": array.dtype.str}
        known = self._progress.get("outputs")
        if known is None:
            self._progress["outputs"] = schema
        elif known != schema:
            raise DatasetError(
                f"{span.name}: outputs {schema} differ from the other shards' {known}; "
                "every shard must share names, grids and dtypes"
            )

    def _ensure_coords(self, coords: Mapping[str, Any]) -> None:
        folder = self.path / COORDS
        if self._progress.get("coords") is not None:
            group = _open_group(folder, mode="r")
            stored = set(group.array_keys())
            same = stored == set(coords) and all(
                np.array_equal(group[k][...], np.asarray(v), equal_nan=True)
                and group[k].dtype == np.asarray(v).dtype
                for k, v in coords.items()
            )
            if not same:
                raise DatasetError(
                    f"coordinates {sorted(coords)} of a new shard differ from the "
                    f"stored ones {sorted(stored)}; every shard must share one grid"
                )
            return
        tmp = self.path / f"{_TMP_PREFIX}coords-{uuid.uuid4().hex[:12]}"
        try:
            group = _open_group(tmp, mode="w")
            for name in sorted(coords):
                _write_array(group, name, np.asarray(coords[name]), per_case=False)
            _fsync_tree(tmp)
            sha = sha256_tree(tmp)
            if folder.exists():
                _remove(folder)
            os.rename(tmp, folder)
        except BaseException:
            _remove(tmp)
            raise
        self._progress["coords"] = {
            "sha256": sha,
            "arrays": {
                k: {
                    "shape": list(np.shape(v)),
                    "dtype": np.asarray(v).dtype.str,
                    "unit": self.units.get(k),
                }
                for k, v in sorted(coords.items())
            },
        }
        write_json_atomic(self.path / PROGRESS, self._progress)

    # -- finishing --------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Write the complete manifest; every shard must be finished."""
        missing = [s.name for s in self.pending()]
        if missing:
            raise DatasetIncompleteError(
                f"{self.path}: cannot finish with {len(missing)} shards missing "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
            )
        return self._write_manifest(complete=True, progress=self._progress)

    def _write_manifest(
        self, *, complete: bool, progress: Mapping[str, Any]
    ) -> dict[str, Any]:
        shards = [
            {"name": s.name, "start": s.start, "stop": s.stop, "sha256": r["sha256"]}
            for s in self.spans
            if (r := progress["shards"].get(s.name)) is not None
        ]
        coords = progress.get("coords")
        outputs = progress.get("outputs") or {}
        manifest: dict[str, Any] = {
            **self.header,
            "format": FORMAT,
            "complete": complete,
            "n_shards": len(self.spans),
            "outputs": [
                {"name": name, "unit": self.units.get(name), **outputs[name]}
                for name in sorted(outputs)
            ],
            "coords": coords["arrays"] if coords else {},
            "coords_sha256": coords["sha256"] if coords else None,
            "shards": shards,
            "dataset_sha256": (
                dataset_checksum(shards, coords["sha256"]) if complete else None
            ),
        }
        write_json_atomic(self.path / MANIFEST, manifest)
        return manifest

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock is not None:
            _release_lock(self._lock)
            self._lock = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _empty_progress() -> dict[str, Any]:
    return {"shards": {}, "coords": None, "outputs": None}


def _header_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, stored value, new value)`` for every key whose value differs."""
    differing = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in _VOLATILE_KEYS:
            continue
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        dotted = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            differing.extend(_header_diff(a, b, f"{dotted}."))
        elif a != b:
            differing.append((dotted, a, b))
    return differing


# -- reading --------------------------------------------------------------------------


class Dataset:
    """A finished dataset, opened by :func:`open_dataset`.

    Attributes:
        path: the dataset folder.
        manifest: the parsed ``manifest.json``.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.path)!r}, twin={self.twin!r}, n_cases={self.n_cases}, "
            f"sha256={self.sha256[:12]}...)"
        )

    @property
    def twin(self) -> str:
        return self.manifest["twin"]

    @property
    def n_cases(self) -> int:
        return int(self.manifest["n_cases"])

    @property
    def sha256(self) -> str:
        """The dataset checksum (``dataset_sha256`` of the manifest)."""
        return self.manifest["dataset_sha256"]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.manifest["outputs"]]

    @property
    def units(self) -> dict[str, str | None]:
        """Unit of every output and coordinate, where the twin declares one."""
        units = {o["name"]: o["unit"] for o in self.manifest["outputs"]}
        units.update({k: v["unit"] for k, v in self.manifest["coords"].items()})
        return units

    @property
    def shard_paths(self) -> list[Path]:
        return [self.path / SHARDS / s["name"] for s in self.manifest["shards"]]

    @cached_property
    def inputs(self) -> pd.DataFrame:
        """One row per case, in case order; index 0..n_cases-1 equals ``case_id``."""
        return _concat_parquet(p / INPUTS for p in self.shard_paths)

    @cached_property
    def summary(self) -> pd.DataFrame | None:
        """Per-case scalar outcomes, one row per case; None if the twin gives none."""
        files = [p / SUMMARY for p in self.shard_paths]
        if not all(f.exists() for f in files):
            return None
        return _concat_parquet(files)

    @cached_property
    def coords(self) -> dict[str, np.ndarray]:
        """The shared coordinates, e.g. ``{"time_min": (T,)}``."""
        group = _open_group(self.path / COORDS, mode="r")
        return {name: group[name][...] for name in sorted(group.array_keys())}

    def output(self, name: str) -> np.ndarray:
        """One output over all cases, shape ``(n_cases, *grid)``."""
        if name not in self.output_names:
            raise KeyError(
                f"no output {name!r} in dataset {self.path.name}; it has "
                f"{self.output_names}"
            )
        parts = [
            _open_group(p / OUTPUTS, mode="r")[name][...] for p in self.shard_paths
        ]
        return np.concatenate(parts, axis=0)

    def outputs(self, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Several outputs (all by default), each ``(n_cases, *grid)``."""
        chosen = self.output_names if names is None else list(names)
        return {name: self.output(name) for name in chosen}

    def case(self, i: int) -> Case:
        """Case ``i``, rebuilt exactly from its stored JSON through the registry."""
        from medtwin_ml.registry import get_twin

        if not 0 <= i < self.n_cases:
            raise IndexError(f"case {i} out of range; the dataset has {self.n_cases}")
        spec = get_twin(self.twin)
        row = self.inputs.iloc[i]
        return Case(
            params=spec.parameters.model_validate_json(row["params_json"]),
            device=spec.device.model_validate_json(row["device_json"]),
            scenario=spec.scenario.model_validate_json(row["scenario_json"]),
        )

    def verify(self) -> None:
        """Check every shard and the coordinates against their recorded checksums.

        Raises:
            DatasetIntegrityError: naming the first shard that does not match, with
                the recorded and the found checksum.
        """
        shards = self.manifest["shards"]
        coords_sha = self.manifest["coords_sha256"]
        expected = dataset_checksum(shards, coords_sha)
        if expected != self.sha256:
            raise DatasetIntegrityError(
                f"dataset {self.path}: manifest checksum {self.sha256} does not match "
                f"its shard list ({expected}); the manifest was altered"
            )
        _verify_folder(self.path / COORDS, coords_sha, f"coordinates of {self.path}")
        for record, folder in zip(shards, self.shard_paths, strict=True):
            _verify_folder(
                folder, record["sha256"], f"shard {record['name']} of {self.path}"
            )


def open_dataset(path: str | os.PathLike[str], *, verify: bool = True) -> Dataset:
    """Open a finished dataset, verifying every shard's checksum by default.

    Raises:
        DatasetError: no dataset manifest at ``path``, or an unknown format.
        DatasetIncompleteError: generation has not finished or was interrupted.
        DatasetIntegrityError: a shard (or the coordinates) does not match its
            recorded checksum; the message names the shard and both checksums.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        if path.is_dir() and (path / _LOCK).exists():
            raise DatasetIncompleteError(
                f"dataset {path} is incomplete: its writer stopped before writing "
                "a manifest; run the generation again to resume"
            )
        raise DatasetError(f"no dataset at {path}: {MANIFEST} not found")
    manifest = _read_json(manifest_path)
    if manifest.get("format") != FORMAT:
        raise DatasetError(
            f"{manifest_path}: format {manifest.get('format')!r}; expected {FORMAT!r}"
        )
    if not manifest.get("complete"):
        raise DatasetIncompleteError(
            f"dataset {path} is incomplete: {len(manifest['shards'])} of "
            f"{manifest['n_shards']} shards finished; run the generation again "
            "with the same config to resume"
        )
    dataset = Dataset(path, manifest)
    if verify:
        dataset.verify()
    return dataset


def _verify_folder(folder: Path, expected: str, what: str) -> None:
    if not folder.is_dir():
        raise DatasetIntegrityError(f"{what} is missing ({folder} not found)")
    actual = sha256_tree(folder)
    if actual != expected:
        raise DatasetIntegrityError(
            f"{what} is corrupted: sha256 {actual} found, {expected} recorded"
        )


# -- files ----------------------------------------------------------------------------


def _open_group(path: Path, mode: str) -> Any:
    import zarr

    return zarr.open_group(store=str(path), mode=mode, zarr_format=3)


def _write_array(group: Any, name: str, data: np.ndarray, *, per_case: bool) -> None:
    """One Zarr array; with ``per_case`` each case (first index) is one chunk.

    The chunks of a shard's array are stored together in one Zarr shard file (the
    v3 sharding codec, with an index of where each case's chunk lies), so that a
    dataset of a million cases is a few files per shard, not millions, while one
    case is still read on its own.
    """
    from zarr.codecs import ZstdCodec

    full = tuple(max(n, 1) for n in data.shape)
    chunks = (1, *full[1:]) if per_case else full
    fill = np.nan if data.dtype.kind == "f" else 0
    array = group.create_array(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        shards=full if per_case else None,
        compressors=ZstdCodec(level=_ZSTD_LEVEL, checksum=False),
        fill_value=fill,
        config={"write_empty_chunks": True},
    )
    array[...] = data


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", compression_level=_ZSTD_LEVEL)


def _concat_parquet(files: Iterable[Path]) -> pd.DataFrame:
    frames = [pd.read_parquet(f) for f in files]
    return pd.concat(frames, ignore_index=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return data


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=False)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk before it is renamed."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _acquire_lock(path: Path) -> int | None:
    """An exclusive advisory lock on ``path``; the kernel drops it if we die."""
    try:
        import fcntl
    except ImportError:  # Windows: no fcntl; one writer per folder is then on trust.
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatasetError(
            f"another writer is generating {path.parent}; wait for it to finish"
        ) from None
    return fd


def _release_lock(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
