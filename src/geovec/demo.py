"""``geovec demo``: the main job on the embedded default, end to end, in a few minutes.

Indexes every sample GeoTIFF of the data root (RSVQA-LR Sentinel-2 scenes over the Netherlands, RSVQA-HR USGS
orthophotos of Long Island, EuroSAT-MS 13-band Sentinel-2 patches over Europe, SatCLIP's 12-band Sentinel-2 L2A
patches worldwide; 230 files, ~305 chips of 256 px) into an embedded LanceDB directory with the bundled model,
then searches it by text, by place, by example image and by a stored chip ("more like this"), printing what it
finds, and says how to open the map page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geovec.cli_common import format_option, is_terminal

# (folder under the data root, what it is): every GeoTIFF under the folder is indexed
SAMPLES = [
    ("rsvqa_lr/Images_LR", "RSVQA-LR, Sentinel-2 RGB, Netherlands"),
    ("rsvqa_hr/Data", "RSVQA-HR, USGS orthophotos 0.2 m, Long Island"),
    ("eurosat_ms", "EuroSAT-MS, Sentinel-2 L1C 13 bands, Europe"),
    ("satclip_s2", "SatCLIP, Sentinel-2 L2A 12 bands, worldwide"),
]
TIFF = (".tif", ".tiff")


def sample_files(root: Path) -> list[tuple[str, str, list[Path]]]:
    """(folder, description, GeoTIFFs) of each sample folder present under ``root``."""
    out = []
    for folder, what in SAMPLES:
        d = root / folder
        if d.is_dir():
            files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in TIFF)
            if files:
                out.append((folder, what, files))
    return out


def demo(
    data_root: Optional[Path] = typer.Option(None, help="Folder laid out like ../shared/data (default: $GEOVEC_DATA_ROOT or ../shared/data)."),
    db: Path = typer.Option(Path("out/demo.lancedb"), help="Index directory to create (embedded LanceDB)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name or checkpoint (default: bundled)."),
    k: int = typer.Option(3, "-k", help="Results per query."),
    fmt: str = format_option(),
) -> None:
    """Index the sample GeoTIFFs (RSVQA, EuroSAT-MS, SatCLIP) with the default model and search them by text,
    place, image and "more like this"; then open them on the map with `geovec serve`.

    Rerunning reuses the index (only new files are embedded). --format json prints the index summary and every
    query's hits as one JSON document."""
    import geovec
    from geovec.index import GeoIndex
    from geovec.paths import default_data_root

    root = data_root or default_data_root()
    found = sample_files(root) if root else []
    if not found:
        expected = ", ".join(f"{f}/" for f, _ in SAMPLES)
        raise typer.BadParameter(
            f"no sample GeoTIFFs under {root}: expected one of {expected} (rsvqa_lr/Images_LR/*.tif, ...); "
            "pass --data-root or set GEOVEC_DATA_ROOT")
    m = geovec.load_model(model)
    say = (lambda line="": typer.echo(line, err=True)) if fmt == "json" else typer.echo
    say(f"model {m.model_id}@{m.revision}, {m.embed_dim}-d; indexing into {db}:")
    for folder, what, files in found:
        say(f"  {folder}: {len(files)} GeoTIFFs ({what})")
    missing = [f for f, _ in SAMPLES if f not in {x[0] for x in found}]
    if missing:
        say(f"  (not found under {root}: {', '.join(missing)})")
    files = [p for _, _, fs in found for p in fs]
    index = GeoIndex.build(files, db=db, model=m, chip_size=256)
    s = GeoIndex.last_summary
    say(f"index: {len(index)} chips ({s.chips_embedded} embedded now, {s.chips_skipped_done} already indexed, "
        f"{len(s.failed)} failed)\n")
    short = is_terminal()  # on a terminal: a path under the data root; in a pipe or a file: the whole path
    report: dict = {"model": m.model_id, "revision": m.revision, "db": str(db), "chips": len(index),
                    "datasets": {f: len(fs) for f, _, fs in found}, "queries": []}

    def name(path: str) -> str:
        p = Path(path)
        if not short:
            return path
        try:
            return str(p.relative_to(root.resolve()))
        except ValueError:
            return f"{p.parent.name}/{p.name}"

    def show(title: str, hits, note: str = "") -> None:
        report["queries"].append({"query": title, "hits": [h.to_dict() for h in hits], **({"note": note} if note else {})})
        if fmt == "json":
            return
        typer.echo(title)
        for h in hits:
            where = f"{h.centre_lat:8.4f}, {h.centre_lon:9.4f}" if h.centre_lat is not None else "-"
            dist = f"  {h.distance_km:6.1f} km" if h.distance_km is not None else ""
            typer.echo(f"  {h.rank:>2}. {h.score:6.3f}  {name(h.path)} window {h.window}  ({where}){dist}")
        if note:
            typer.echo(f"  -> {note}")
        typer.echo("")

    have = {f for f, _, _ in found}
    by_folder = {f: fs for f, _, fs in found}
    show('text "dense residential area with many houses and roads":',
         index.search(text="dense residential area with many houses and roads", k=k))
    if "eurosat_ms" in have:
        hits = index.search(text="a lake or the sea", k=k)
        show('text "a lake or the sea":', hits)
    if "rsvqa_lr/Images_LR" in have:
        show("place: within 30 km of Venlo (51.37 N, 6.17 E), text \"farmland\":",
             index.search(text="farmland", near=(51.37, 6.17), within_km=30, k=k))
    if "rsvqa_hr/Data" in have:
        example = by_folder["rsvqa_hr/Data"][0]
        hits = index.search(image=example, box=(0, 0, 256, 256), k=k)
        own = f"{example.resolve()}#0,0,256,256"
        rank = next((h.rank for h in hits if h.id.split("|", 1)[0] == own), None)
        show(f"find similar: the top-left quarter of {name(str(example.resolve()))}:", hits,
             f"that chip itself is at rank {rank}" if rank else "")
    if "eurosat_ms" in have:
        # more like a stored chip (its vector, nothing embedded): a EuroSAT patch; its class is its folder
        eurosat = by_folder["eurosat_ms"]
        example = next((p for p in eurosat if p.parent.name == "SeaLake"), eurosat[0])
        hits = index.like(str(example.resolve()), k=k + 1)  # a file that is one chip names that chip
        cls = example.parent.name
        same = sum(Path(h.path).parent.name == cls for h in hits[1:])
        show(f"more like this: the stored chip of {name(str(example.resolve()))} (EuroSAT class {cls}):", hits,
             f"rank 1 is the chip itself; {same} of the next {len(hits) - 1} are {cls} too")
    if fmt == "json":
        import json

        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"see them on the map:  geovec serve --db {db}   then open http://127.0.0.1:8000/")
    typer.echo("  (each chip's imagery at its place; search by text, click a place, 'more like this', draw a box, "
               "export GeoJSON)")
    typer.echo(f"more:  geovec search --db {db} --text '...'  |  geovec index export --db {db} -o demo.parquet  |  "
               "geovec bench --suite rsmeb-dev")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
