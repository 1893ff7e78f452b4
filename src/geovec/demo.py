"""``geovec demo``: the main job on the embedded default, end to end, in a minute or two.

Indexes the sample GeoTIFFs of the data root (Sentinel-2 scenes over the Netherlands/Germany and USGS
orthophotos of Long Island) into an embedded LanceDB directory with the bundled model, then searches it by
text, by place and by example image, printing what it finds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geovec.cli_common import format_option, is_terminal


def demo(
    data_root: Optional[Path] = typer.Option(None, help="Folder laid out like ../shared/data (default: $GEOVEC_DATA_ROOT or ../shared/data)."),
    db: Path = typer.Option(Path("out/demo.lancedb"), help="Index directory to create (embedded LanceDB)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name or checkpoint (default: bundled)."),
    k: int = typer.Option(3, "-k", help="Results per query."),
    fmt: str = format_option(),
) -> None:
    """Index the sample GeoTIFFs with the default model and search them by text, place and image.

    --format json prints the index summary and every query's hits as one JSON document."""
    import geovec
    from geovec.index import GeoIndex
    from geovec.paths import default_data_root

    root = data_root or default_data_root()
    scenes = [root / "rsvqa_lr" / "Images_LR", root / "rsvqa_hr" / "Data"] if root else []
    if not scenes or not all(p.is_dir() for p in scenes):
        raise typer.BadParameter(
            f"sample scenes not found under {root}: expected rsvqa_lr/Images_LR/*.tif and rsvqa_hr/Data/*.tif "
            "(pass --data-root or set GEOVEC_DATA_ROOT)")
    m = geovec.load_model(model)
    say = (lambda line="": typer.echo(line, err=True)) if fmt == "json" else typer.echo
    say(f"model {m.model_id}@{m.revision}, {m.embed_dim}-d; indexing {', '.join(map(str, scenes))} -> {db}")
    index = GeoIndex.build(scenes, db=db, model=m, chip_size=256)
    s = GeoIndex.last_summary
    say(f"index: {len(index)} chips ({s.chips_embedded} embedded now, {s.chips_skipped_done} already indexed, {len(s.failed)} failed)\n")
    short = is_terminal()  # on a terminal: folder/file; in a pipe or a file: the whole path, never cut
    report: dict = {"model": m.model_id, "revision": m.revision, "db": str(db), "chips": len(index), "queries": []}

    def show(title: str, hits) -> None:
        report["queries"].append({"query": title, "hits": [h.to_dict() for h in hits]})
        if fmt == "json":
            return
        typer.echo(title)
        for h in hits:
            where = f"{h.centre_lat:8.4f}, {h.centre_lon:9.4f}" if h.centre_lat is not None else "-"
            dist = f"  {h.distance_km:6.1f} km" if h.distance_km is not None else ""
            name = f"{Path(h.path).parent.parent.name}/{Path(h.path).name:<8}" if short else h.path
            typer.echo(f"  {h.rank:>2}. {h.score:6.3f}  {name} window {h.window}  ({where}){dist}")
        typer.echo("")

    show('text "dense residential area with many houses and roads":',
         index.search(text="dense residential area with many houses and roads", k=k))
    show("place: within 30 km of Venlo (51.37 N, 6.17 E), text \"farmland\":",
         index.search(text="farmland", near=(51.37, 6.17), within_km=30, k=k))
    example = sorted((root / "rsvqa_hr" / "Data").glob("*.tif"))[0]
    show(f"more like the top-left quarter of {example.name}:",
         index.search(image=example, box=(0, 0, 256, 256), k=k))
    if fmt == "json":
        import json

        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"next: geovec search --db {db} --text '...' | geovec serve --db {db} | geovec bench --suite rsmeb-dev")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
