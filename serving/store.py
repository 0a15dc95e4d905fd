"""The surrogates a server answers with, loaded and verified at start-up."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtwin_ml.export.bundle import CARD_FILE, BundleError
from medtwin_ml.export.runtime import SurrogateRunner
from serving.batcher import MicroBatcher

__all__ = ["LoadedModel", "ModelStore"]

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """One verified bundle with its runner and, when the card has one, its validity
    detector."""

    runner: SurrogateRunner
    batcher: MicroBatcher
    detector: Any = None
    case_features: Any = None
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.runner.card.name

    @property
    def version(self) -> str:
        return self.runner.card.version


def _validity(card_validity: dict[str, Any]) -> tuple[Any, Any]:
    if not card_validity:
        return None, None
    try:
        from medtwin_ml.validation.domain import ValidityDetector, case_features
    except ImportError:
        logger.warning(
            "the card carries a validity detector but medtwin_ml.validation.domain "
            "is not installed; judging the domain by its bounds only"
        )
        return None, None
    return ValidityDetector.from_dict(card_validity), case_features


class ModelStore:
    """Every bundle found directly under a folder, by model name.

    Args:
        bundles: folder whose subfolders holding a ``card.json`` are bundles.
        threads: onnxruntime intra-op threads per model.
        batch_rows: most cases in one micro-batch (see :mod:`serving.batcher`).
        bulk_threads: threads that share the chunks of a large batch (see
            :meth:`~medtwin_ml.export.runtime.SurrogateRunner.run`).

    Raises:
        BundleError: a bundle is incomplete, its files do not match their
            checksums, its model does not match the card's sha256, its twin is
            unknown, or two bundles share a name. The server then does not start:
            it never answers with a model it cannot vouch for.
    """

    def __init__(
        self,
        bundles: str | os.PathLike[str],
        threads: int = 1,
        batch_rows: int = 64,
        bulk_threads: int = 1,
    ):
        self.root = Path(bundles)
        if not self.root.is_dir():
            raise BundleError(f"bundle folder {self.root} does not exist")
        self.models: dict[str, LoadedModel] = {}
        for path in sorted(p for p in self.root.iterdir() if (p / CARD_FILE).exists()):
            model = self._load(path, threads, batch_rows, bulk_threads)
            if model.name in self.models:
                raise BundleError(
                    f"bundle {path}: model name {model.name!r} is already served by "
                    f"{self.models[model.name].runner.path}"
                )
            self.models[model.name] = model
            logger.info(
                "loaded %s v%s (twin %s, sha256 %s) from %s",
                model.name,
                model.version,
                model.runner.card.twin,
                model.runner.card.model_sha256[:12],
                path,
            )
        if not self.models:
            logger.warning("no bundle found in %s", self.root)

    @staticmethod
    def _load(
        path: Path, threads: int, batch_rows: int, bulk_threads: int
    ) -> LoadedModel:
        # The runner loads the bundle through load_bundle, which refuses it unless
        # model.onnx and card.json match SHA256SUMS and the card's model sha256.
        runner = SurrogateRunner(path, threads=threads, bulk_threads=bulk_threads)
        try:
            twin = runner.twin
        except KeyError as exc:
            raise BundleError(f"bundle {path}: {exc}") from None
        if twin.exogenous_inputs is None:
            raise BundleError(
                f"bundle {path}: twin {twin.name} declares no exogenous inputs, so "
                "its cases cannot be turned into the model's controls"
            )
        detector, features = _validity(runner.card.validity)
        runner.warm_up()
        batcher = MicroBatcher(runner.run, batch_rows, runner.card.name)
        return LoadedModel(
            runner=runner, batcher=batcher, detector=detector, case_features=features
        )

    def get(self, name: str) -> LoadedModel | None:
        return self.models.get(name)

    def close(self) -> None:
        """Stop every model's bulk threads."""
        for model in self.models.values():
            model.runner.close()
