"""A tiny data root in the ``shared/data`` layout (official on-disk formats, via ``tests.bench.formats``):
RSICD train + val with class lists, RSVQA-LR/HR GeoTIFFs with real georeferences and ``geo_index.csv``, and
the NWPU-RESISC12 class folders: what every rsmeb-dev task reads."""

from __future__ import annotations

from pathlib import Path

import geovec.data

from tests.bench.formats import write_caption_dataset, write_class_folders, write_geotiff, write_outside_data

CLASSES = ["Airport", "Beach", "Center", "Forest", "Port", "River"]


def rsicd_entries(per_class_train: int = 2, per_class_val: int = 2) -> list[tuple[str, str, list[str]]]:
    entries = []
    for c in CLASSES:
        w = c.lower()
        for k in range(per_class_train):
            entries.append((f"{w}_{k}.jpg", "train", [f"a {w} seen from above number {k} .", f"{w} {k} in the train set ."]))
        for k in range(per_class_val):
            entries.append((f"{w}_{100 + k}.jpg", "val", [f"a {w} in the val set number {k} .", " ."]))
    return entries


def write_dev_data(root: Path, per_class_train: int = 2, per_class_val: int = 2, geo: bool = True,
                   outside: bool = False) -> Path:
    entries = rsicd_entries(per_class_train, per_class_val)
    write_caption_dataset(root / "rsicd", "RSICD_images", "dataset_rsicd.json", entries)
    (root / "rsicd" / "classes").mkdir(parents=True, exist_ok=True)
    for c in CLASSES:
        names = [fn for fn, _, _ in entries if fn.startswith(c.lower() + "_")]
        (root / "rsicd" / "classes" / f"{c}.txt").write_text("".join(f"{n}\n" for n in names))
    nwpu = getattr(geovec.data, "NWPURESISC12", None)
    if nwpu is not None:
        write_class_folders(root / "nwpu_resisc12", {c: [f"{c}_001.jpg", f"{c}_002.jpg"] for c in nwpu.classes})
    if geo:
        rows = ["dataset,relpath,width,height,center_lat,center_lon,src_epsg,pixel_size_crs_units"]
        for dataset, folder, n, lat0, lon0 in (("rsvqa_lr", "Images_LR", 7, 51.2, 5.9), ("rsvqa_hr", "Data", 6, 40.8, -73.2)):
            for i in range(n):
                lat, lon = lat0 + 0.05 * i, lon0 + 0.07 * i  # ~6 km apart: several 10 km blocks per source
                write_geotiff(root / dataset / folder / f"{i}.tif", lat, lon, size=16, seed=i)
                rows.append(f"{dataset},{folder}/{i}.tif,16,16,{lat},{lon},3857,10")
        (root / "geo_index.csv").write_text("\n".join(rows) + "\n")
    if outside:  # EuroSAT RGB / MS and NWPU VHR-10 for the tasks outside RSICD
        write_outside_data(root)
    return root
