"""Image-caption datasets: RSICD, RSITMD, UCM-captions, Sydney-captions.

Two official on-disk forms, both supported by :class:`CaptionDataset`:

* Karpathy-style json: ``{"images": [{"filename", "imgid", "split", "sentids", "sentences": [{"tokens",
  "raw", "imgid", "sentid"}]}], "dataset": ...}`` next to an image folder;
* "precomp" text files (AMFMN/GaLR releases): ``<precomp>/{split}_filename.txt`` (one line per image) and
  ``{split}_caps.txt`` (5 consecutive caption lines per image). Some releases repeat the file name on every
  caption line instead; both are read.

The json is used when present, else the precomp files. Samples: ``{"image": Path, "filename", "imgid",
"captions": [str, ...], "caption_slots": [str, ...]}``. ``caption_slots`` are the image's caption slots as
released (5 for RSICD, verbatim duplicates and empty captions included): the published retrieval protocol ranks
every slot. ``captions`` drops empty captions (RSICD has three whose ``raw`` is ``" ."``), for training and
for tasks that use captions as descriptions.

:class:`RSICDScenes` reads the RSICD scene-class lists ``classes/<Class>.txt`` (one filename per line).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from geovec.data.base import Dataset, prompt_name


@lru_cache(maxsize=8)
def _parse_json(path: str, mtime_ns: int, size: int) -> dict:
    """Parsed caption json, cached per file version (RSICD's is ~10 MB; dev tasks read it several times).
    Callers must not mutate the result."""
    return json.loads(Path(path).read_text())


def read_json(path: Path) -> dict:
    st = path.stat()
    return _parse_json(str(path), st.st_mtime_ns, st.st_size)


def clean_caption(raw: str) -> str:
    return " ".join(raw.split()).strip()


def _is_empty_caption(text: str) -> bool:
    return not text.strip(" .")


class CaptionDataset(Dataset):
    base_dir: ClassVar[str] = ""
    image_dir: ClassVar[str] = "images"
    json_names: ClassVar[tuple[str, ...]] = ("dataset.json",)
    precomp_dir: ClassVar[str] = ""
    splits = ("test", "val", "train")

    def __init__(self, root, split: str = "test", transforms=None, source: str = "auto"):
        if source not in ("auto", "json", "precomp"):
            raise ValueError("source must be 'auto', 'json' or 'precomp'")
        self.source = source
        super().__init__(root, split, transforms)

    @property
    def data_root(self) -> Path:
        return self.root / self.base_dir if self.base_dir else self.root

    def _json_path(self) -> Path | None:
        for n in self.json_names:
            if (self.data_root / n).exists():
                return self.data_root / n
        return None

    def _precomp_paths(self) -> tuple[Path, Path]:
        d = self.data_root / self.precomp_dir
        return d / f"{self.split}_filename.txt", d / f"{self.split}_caps.txt"

    def _verify(self) -> None:
        if not (self.data_root / self.image_dir).is_dir():
            base = self.base_dir + "/" if self.base_dir else ""
            raise self.missing_error(f"image folder {base}{self.image_dir} does not exist")
        has_json = self._json_path() is not None
        files, caps = self._precomp_paths()
        has_precomp = files.exists() and caps.exists()
        if self.source == "json" and not has_json:
            raise self.missing_error(f"no caption json ({' or '.join(self.json_names)})")
        if self.source == "precomp" and not has_precomp:
            raise self.missing_error(f"no precomp files {files.name} and {caps.name} in {self.precomp_dir}")
        if not has_json and not has_precomp:
            raise self.missing_error(
                f"neither a caption json ({' or '.join(self.json_names)}) nor precomp files "
                f"{self.precomp_dir}/{files.name} + {caps.name}"
            )
        self._use_json = has_json and self.source != "precomp"

    def _load(self) -> list[dict[str, Any]]:
        samples = self._load_json() if self._use_json else self._load_precomp()
        missing = [s["filename"] for s in samples if not s["image"].exists()]
        if missing:
            raise self.missing_error(f"{len(missing)} image file(s) listed for split {self.split!r} are missing "
                                f"from {self.image_dir}/ (e.g. {missing[0]})")
        return samples

    def _load_json(self) -> list[dict[str, Any]]:
        path = self._json_path()
        data = read_json(path)
        if "images" not in data:
            raise self.missing_error(f"{path.name} has no 'images' list (not a Karpathy-style caption json)")
        out = []
        for entry in data["images"]:
            if entry.get("split") != self.split:
                continue
            caps = [clean_caption(s["raw"]) for s in entry.get("sentences", [])]
            out.append({"image": self.data_root / self.image_dir / entry["filename"], "filename": entry["filename"],
                        "imgid": entry.get("imgid", len(out)),
                        "captions": [c for c in caps if not _is_empty_caption(c)], "caption_slots": caps})
        return out

    def _load_precomp(self) -> list[dict[str, Any]]:
        files_path, caps_path = self._precomp_paths()
        files = [ln.strip() for ln in files_path.read_text().splitlines() if ln.strip()]
        caps = [clean_caption(ln) for ln in caps_path.read_text().splitlines()]
        while caps and not caps[-1]:
            caps.pop()  # trailing newline(s)
        groups: list[tuple[str, list[str]]] = []
        if len(caps) == len(files):  # one file name per caption line: group consecutive equal names
            for f, c in zip(files, caps):
                if groups and groups[-1][0] == f:
                    groups[-1][1].append(c)
                else:
                    groups.append((f, [c]))
        elif files and len(caps) % len(files) == 0:
            per = len(caps) // len(files)
            groups = [(f, caps[i * per : (i + 1) * per]) for i, f in enumerate(files)]
        else:
            raise self.missing_error(
                f"{caps_path.name} has {len(caps)} caption lines for {len(files)} file names in {files_path.name}: "
                "expected a fixed number (5) of consecutive captions per image"
            )
        return [{"image": self.data_root / self.image_dir / f, "filename": f, "imgid": i,
                 "captions": [c for c in cs if not _is_empty_caption(c)], "caption_slots": list(cs)}
                for i, (f, cs) in enumerate(groups)]


class RSICD(CaptionDataset):
    """RSICD: 10,921 images (224x224 px, Google Earth / Baidu / MapABC / Tianditu), 5 captions each.

    Lu et al., "Exploring models and data for remote sensing image caption generation", TGRS 2018.
    """

    name = "RSICD"
    url = "https://github.com/201528014227051/RSICD_optimal (RSICD.zip; AMFMN precomp split: github.com/xiaoyuan1996/AMFMN)"
    layout = "<root>/RSICD_images/<name>.jpg + <root>/dataset_rsicd.json (or rsicd_precomp/{split}_filename.txt + {split}_caps.txt)"
    image_dir = "RSICD_images"
    json_names = ("dataset_rsicd.json",)
    precomp_dir = "rsicd_precomp"


class RSITMD(CaptionDataset):
    """RSITMD: 4,743 images (256x256 px), 5 fine-grained captions each.

    Yuan et al., "Exploring a fine-grained multiscale method for cross-modal remote sensing image retrieval", TGRS 2022.
    """

    name = "RSITMD"
    url = "https://github.com/xiaoyuan1996/AMFMN/tree/master/RSITMD"
    layout = "<root>/images/<name>.tif + <root>/dataset_RSITMD.json (or rsitmd_precomp/{split}_filename.txt + {split}_caps.txt)"
    image_dir = "images"
    json_names = ("dataset_RSITMD.json", "dataset_rsitmd.json")
    precomp_dir = "rsitmd_precomp"


class UCMCaptions(CaptionDataset):
    """UCM-captions: the 2,100 UC Merced images (256x256 px), 5 captions each.

    Qu et al., "Deep semantic understanding of high resolution remote sensing image", CITS 2016.
    """

    name = "UCM-captions"
    url = "https://github.com/201528014227051/RSICD_optimal (UCM_captions.zip)"
    layout = "<root>/imgs/<n>.tif + <root>/dataset.json (or ucm_precomp/{split}_filename.txt + {split}_caps.txt)"
    image_dir = "imgs"
    json_names = ("dataset.json",)
    precomp_dir = "ucm_precomp"


class SydneyCaptions(CaptionDataset):
    """Sydney-captions: 613 images (500x500 px, Sydney, Google Earth), 5 captions each.

    Qu et al., "Deep semantic understanding of high resolution remote sensing image", CITS 2016.
    """

    name = "Sydney-captions"
    url = "https://github.com/201528014227051/RSICD_optimal (Sydney_captions.zip)"
    layout = "<root>/imgs/<n>.tif + <root>/dataset.json (or sydney_precomp/{split}_filename.txt + {split}_caps.txt)"
    image_dir = "imgs"
    json_names = ("dataset.json",)
    precomp_dir = "sydney_precomp"


class RSICDScenes(Dataset):
    """RSICD images with their scene class from ``classes/<Class>.txt`` (one filename per line; 30 AID
    classes plus ``playfields``), restricted to the images of ``split`` in ``dataset_rsicd.json``.

    Samples: ``{"image", "filename", "label", "class_name", "prompt_name", "captions"}``.
    """

    name = "RSICD-scenes"
    url = RSICD.url + "; class lists: github.com/Jbarata98/remote-sensing-image-captioning (data/classification/classes_rsicd)"
    layout = "<root>/classes/<Class>.txt + the RSICD layout (" + RSICD.layout + ")"
    splits = ("val", "train", "test")

    def _verify(self) -> None:
        if not (self.root / "classes").is_dir() or not any((self.root / "classes").glob("*.txt")):
            raise self.missing_error("no class lists classes/<Class>.txt")
        self._captions = RSICD(self.root, self.split, source="auto")

    def _load(self) -> list[dict[str, Any]]:
        file_class: dict[str, str] = {}
        for lst in sorted((self.root / "classes").glob("*.txt")):
            for line in lst.read_text().splitlines():
                if line.strip():
                    file_class[line.strip()] = lst.stem
        self.class_names = sorted(set(file_class.values()))
        self.prompt_names = [prompt_name(c) for c in self.class_names]
        index = {c: i for i, c in enumerate(self.class_names)}
        out, unlisted = [], []
        for s in self._captions.samples:
            cls = file_class.get(s["filename"])
            if cls is None:
                unlisted.append(s["filename"])
                continue
            out.append({**s, "label": index[cls], "class_name": cls, "prompt_name": self.prompt_names[index[cls]]})
        if unlisted:
            raise self.missing_error(f"{len(unlisted)} {self.split} image(s) are in no class list (e.g. {unlisted[0]})")
        return out


# --- your own caption files in an official format ------------------------------------------------------------
def _caption_files(root: Path, image_dir, split: str, source: str, json_name: str | None = None) -> CaptionDataset:
    """A :class:`CaptionDataset` over caption files at any path (your own data in an official format)."""
    attrs = {"name": "caption files", "url": "your own data", "image_dir": str(Path(image_dir).absolute()),
             "json_names": (json_name,) if json_name else (), "precomp_dir": "",
             "layout": "a Karpathy-style caption json, or {split}_filename.txt + {split}_caps.txt, + an image folder",
             "splits": (split,)}
    return type("CaptionFiles", (CaptionDataset,), attrs)(root, split, source=source)


def karpathy_captions(dataset_json: str | Path, image_dir: str | Path, split: str = "train") -> list[tuple[str, list[str]]]:
    """Karpathy-style json (``images[].filename/split/sentences[].raw``) -> [(image path, captions)] of one
    split, read by :class:`geovec.data.CaptionDataset` (empty captions dropped, missing images reported)."""
    p = Path(dataset_json)
    ds = _caption_files(p.parent, image_dir, split, "json", json_name=p.name)
    return [(str(s["image"]), list(s["captions"])) for s in ds.samples]


def precomp_captions(precomp_dir: str | Path, image_dir: str | Path, split: str = "train") -> list[tuple[str, list[str]]]:
    """"precomp" text files ``{split}_filename.txt`` + ``{split}_caps.txt`` -> [(image path, captions)], read
    by :class:`geovec.data.CaptionDataset` (a fixed number of consecutive caption lines per image, or the file
    name repeated on every caption line)."""
    ds = _caption_files(Path(precomp_dir), image_dir, split, "precomp")
    return [(str(s["image"]), list(s["captions"])) for s in ds.samples]
