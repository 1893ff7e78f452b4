"""``geovec data``: build datasets from the data you have (``vqa-gen``: RSVQA-style question/answer pairs from
captions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geovec.cli_common import format_option, print_table


def _class_lists(folder: Path) -> dict[str, str]:
    """``<folder>/<Class>.txt`` (one image file name per line) -> {file name: class}."""
    out = {}
    for lst in sorted(folder.glob("*.txt")):
        for line in lst.read_text().splitlines():
            if line.strip():
                out[line.strip()] = lst.stem
    return out


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Build datasets from the data you have.", no_args_is_help=True)

    @data_app.command("vqa-gen")
    def vqa_gen(
        out_dir: Path = typer.Argument(..., help="Folder for <prefix>_split_<split>_{questions,answers,images}.json "
                                                 "and images/."),
        captions: Optional[Path] = typer.Option(None, "--captions",
                                                help="Karpathy-style caption json (default: RSICD's "
                                                     "dataset_rsicd.json under --data-root)."),
        images: Optional[Path] = typer.Option(None, "--images",
                                              help="Image folder of the json (default: RSICD_images beside it)."),
        classes: Optional[Path] = typer.Option(None, "--classes",
                                               help="Folder of <Class>.txt image lists (default: classes/ beside "
                                                    "the json, when there). Without classes: no scene or "
                                                    "rural/urban questions."),
        split: str = typer.Option("train", "--split", help="Split of the json to generate from."),
        data_root: Optional[Path] = typer.Option(None, "--data-root",
                                                 help="../shared/data layout (default: $GEOVEC_DATA_ROOT or "
                                                      "../shared/data)."),
        prefix: str = typer.Option("VQA", "--prefix", help="File prefix (RSVQA uses LR / USGS)."),
        seed: int = typer.Option(0, "--seed", help="Seed of every choice (same seed, same pairs)."),
        copy: bool = typer.Option(False, "--copy", help="Copy the images into images/ instead of linking them."),
        fmt: str = format_option(),
    ) -> None:
        """Derive RSVQA-style question/answer pairs (presence, count, comparison, rural/urban, scene type) from
        the captions and classes of one split, by the rules of geovec.data.vqa_gen, and write them in the RSVQA
        format. The "no" answers are measured against the json's train split when it has one. Read them back
        with geovec.data.vqa_gen.DerivedVQA(OUT_DIR, SPLIT) (prefix VQA) or
        geovec.train.converters.rsvqa_examples(OUT_DIR, SPLIT, prefix, "images")."""
        from geovec.data.vqa_gen import generate_pairs, write_rsvqa
        from geovec.data.captions import karpathy_captions

        if captions is None:
            from geovec.paths import default_data_root

            root = data_root or default_data_root()
            if root is None:
                raise typer.BadParameter("no caption json: pass --captions or --data-root (or set GEOVEC_DATA_ROOT)")
            captions = Path(root) / "rsicd" / "dataset_rsicd.json"
            images = images or captions.parent / "RSICD_images"
        if images is None:
            raise typer.BadParameter("give the image folder of the caption json: --images PATH")
        if not captions.exists():
            raise typer.BadParameter(f"caption json {captions} does not exist")
        classes = classes or (captions.parent / "classes" if (captions.parent / "classes").is_dir() else None)
        file_class = _class_lists(classes) if classes else {}

        def samples(which: str) -> list[dict]:
            return [{"image": p, "captions": caps, "class_name": file_class.get(Path(p).name)}
                    for p, caps in karpathy_captions(captions, images, which)]

        chosen = samples(split)
        splits = {e.get("split") for e in json.loads(captions.read_text()).get("images", [])}
        reference = samples("train") if split != "train" and "train" in splits else chosen
        pairs = generate_pairs(chosen, reference=reference, seed=seed)
        written = write_rsvqa(pairs, out_dir, split=split, prefix=prefix, link="copy" if copy else "symlink")
        if fmt == "json":
            typer.echo(json.dumps(written, indent=1))
            return
        rows = [{"type": t, "questions": n} for t, n in sorted(written["types"].items())]
        print_table(rows, ["type", "questions"],
                    title=f"{written['n_questions']} questions on {written['n_images']} images -> {out_dir}")

    app.add_typer(data_app, name="data")
