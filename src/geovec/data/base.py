"""Shared pieces of the RSMEB dataset loaders (torchgeo-shaped).

Every loader is ``Dataset(root, split, transforms=None)``: ``root`` is the folder that holds the dataset's
official release as unpacked (nothing is ever downloaded), ``split`` one of ``splits``. Samples are dicts
(``{"image": path, "label": int, ...}``); ``transforms`` (optional) maps a sample dict to a sample dict.
A missing or partial release raises :class:`DatasetNotFoundError` naming the expected layout and where the
official release comes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from geovec.data.classnames import readable_name


class DatasetNotFoundError(FileNotFoundError):
    """A benchmark dataset is missing or incomplete under ``root``."""

    def __init__(self, dataset: str, root: str | Path, problem: str, layout: str, source: str):
        self.dataset = dataset
        self.root = Path(root)
        self.problem = problem
        super().__init__(
            f"{dataset} not found under {self.root}: {problem}.\n"
            f"  expected layout: {layout}\n"
            f"  get the official release from {source} and unpack it there (geovec never downloads data)"
        )


def prompt_name(native: str, overrides: dict[str, str] | None = None) -> str:
    """A class name fit for a text prompt, from the shared table :data:`geovec.data.classnames.CLASS_NAMES`
    (``Center`` -> ``city center``, ``storagetanks`` -> ``storage tanks``, ``SeaLake`` -> ``sea or lake``);
    names outside it are split into words (``DenseResidential`` / ``dense_residential`` -> ``dense residential``).
    ``overrides`` (native -> name) take precedence."""
    if overrides and native in overrides:
        return overrides[native]
    return readable_name(native)


class Dataset:
    """A dataset's official release on disk, read as a list of sample dicts (the benchmark and training both
    read it). Class attributes carry the dataset's identity; subclasses check the files and fill ``self.samples``."""

    name: ClassVar[str] = ""
    url: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("all",)

    def __init__(self, root: str | Path, split: str = "", transforms: Callable[[dict], dict] | None = None):
        self.root = Path(root)
        split = split or self.splits[0]
        if split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; choose one of {list(self.splits)}")
        self.split = split
        self.transforms = transforms
        self.samples: list[dict[str, Any]] = []
        self._verify()
        self.samples = self._load()
        if not self.samples:
            raise self.missing_error(f"no samples for split {split!r} (this release may not include that split)")

    # --- to implement ---------------------------------------------------------------------------------------
    def _verify(self) -> None:
        raise NotImplementedError

    def _load(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    # --- helpers ----------------------------------------------------------------------------------------------
    def missing_error(self, problem: str) -> DatasetNotFoundError:
        """The error for this dataset being absent or incomplete on disk: ``problem`` plus where it was looked
        for, its expected layout and where to get it (raise it)."""
        return DatasetNotFoundError(self.name, self.root, problem, self.layout, self.url)

    def _require(self, paths: Sequence[Path]) -> None:
        missing = [str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p)
                   for p in paths if not p.exists()]
        if missing:
            raise self.missing_error("missing " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.samples[index])
        return self.transforms(sample) if self.transforms else sample

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"
