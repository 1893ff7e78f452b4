"""Each loader on a tiny fixture written in exactly the official layout, quirks included."""

import pytest
from tests.bench.formats import (
    write_caption_dataset,
    write_class_folders,
    write_dior_rsvg,
    write_geotiff,
    write_image,
    write_patterncom,
    write_rsvqa,
    write_rsvqa_official,
)

from geovec.data import (
    AID,
    DIORRSVG,
    RESISC45,
    RSICD,
    RSITMD,
    RSVQAHR,
    RSVQALR,
    WHURS19,
    DatasetNotFoundError,
    GeoTiffFolder,
    MillionAID,
    NWPURESISC12,
    PatternCom,
    PatternNet,
    RSICDScenes,
    SydneyCaptions,
    UCMCaptions,
    UCMerced,
    prompt_name,
)
from geovec.data.classnames import CLASS_NAMES
from geovec.data.rsvqa import normalize_answer


# --- class folders ---------------------------------------------------------------------------------------------
def _full(cls, names):
    return {c: names(c) for c in cls.classes}


@pytest.mark.parametrize(
    "cls, files",
    [
        (UCMerced, lambda c: [f"{c}00.tif", f"{c}01.tif"]),
        (AID, lambda c: [f"{c.lower()}_1.jpg", f"{c.lower()}_2.jpg"]),
        (PatternNet, lambda c: [f"{c}001.jpg"]),
        (RESISC45, lambda c: [f"{c}_001.jpg"]),
        (WHURS19, lambda c: [f"{c.lower()}_01.jpg"]),
    ],
)
def test_class_folder_datasets(tmp_path, cls, files):
    write_class_folders(tmp_path / cls.base_dir, _full(cls, files))
    ds = cls(tmp_path)
    assert ds.split == "all"
    assert len(ds.class_names) == len(cls.classes)
    assert len(ds) == sum(len(files(c)) for c in cls.classes)
    s = ds[0]
    assert set(s) >= {"image", "label", "class_name", "prompt_name"}
    assert s["image"].exists() and ds.class_names[s["label"]] == s["class_name"]


def test_official_class_counts():
    assert (len(UCMerced.classes), len(AID.classes), len(PatternNet.classes), len(RESISC45.classes),
            len(WHURS19.classes)) == (21, 30, 38, 45, 19)


def test_prompt_names():
    assert prompt_name("DenseResidential") == "dense residential"
    assert prompt_name("baseball_field") == "baseball field"
    assert prompt_name("railwayStation") == "railway station"
    # the shared table: readable where the native name is not
    assert prompt_name("Center") == "city center" and prompt_name("storagetanks") == "storage tanks"
    assert prompt_name("ground_track_field") == "ground track field" and prompt_name("RailwayStation") == "railway station"
    assert (prompt_name("AnnualCrop"), prompt_name("HerbaceousVegetation"), prompt_name("SeaLake")) == (
        "annual crop", "herbaceous vegetation", "sea or lake")
    assert prompt_name("playfields") == "playfields" and prompt_name("oil_gas_field") == "oil and gas field"
    assert prompt_name("Center", {"Center": "downtown"}) == "downtown"  # overrides still win
    assert prompt_name("vehicle") == "vehicle"  # outside the table: split into words


@pytest.mark.parametrize("cls", [UCMerced, AID, PatternNet, RESISC45, WHURS19, NWPURESISC12])
def test_class_table_covers_every_official_class(cls):
    table = CLASS_NAMES[cls.name]
    assert set(table) == set(cls.classes)
    assert [prompt_name(c) for c in cls.classes] == [table[c] for c in cls.classes]
    assert all(n == n.lower() and "_" not in n for n in table.values())


def test_class_table_sizes():
    sizes = {k: len(v) for k, v in CLASS_NAMES.items()}
    assert sizes == {"AID": 30, "UCM": 21, "PatternNet": 38, "RESISC45": 45, "NWPU-RESISC12": 12, "WHU-RS19": 19,
                     "Million-AID": 51, "RSICD": 31, "EuroSAT": 10}
    assert {k: v for k, v in CLASS_NAMES["RSICD"].items() if k != "playfields"} == CLASS_NAMES["AID"]


def test_missing_dataset_names_layout_and_source(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        UCMerced(tmp_path)
    msg = str(e.value)
    assert "UCMerced_LandUse/Images/<class>/<class>NN.tif" in msg and "ucmerced.edu" in msg


def test_partial_class_folder_release_is_reported(tmp_path):
    files = {c: [f"{c}00.tif"] for c in UCMerced.classes[:5]}
    write_class_folders(tmp_path / UCMerced.base_dir, files)
    with pytest.raises(DatasetNotFoundError, match="partial release: 16 of 21"):
        UCMerced(tmp_path)


def test_unknown_split_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        AID(tmp_path, split="test")


def test_million_aid_leaf_folder_is_the_class(tmp_path):
    base = tmp_path / "Million-AID"
    write_image(base / "test" / "agriculture_land" / "arable_land" / "dry_field" / "P0001.jpg", 0)
    write_image(base / "test" / "agriculture_land" / "arable_land" / "paddy_field" / "P0002.jpg", 1)
    write_image(base / "test" / "public_service_land" / "leisure_land" / "golf_course" / "P0003.jpg", 2)
    write_image(base / "train" / "transportation_land" / "airport_area" / "runway" / "P0004.jpg", 3)
    write_image(base / "train" / "water_area" / "beach" / "P0005.jpg", 4)  # a leaf at the second level
    ds = MillionAID(tmp_path, "test")
    assert ds.class_names == ["dry_field", "golf_course", "paddy_field"]
    golf = next(s for s in ds if s["class_name"] == "golf_course")
    assert golf["hierarchy"] == ("public_service_land", "leisure_land", "golf_course")
    assert golf["prompt_name"] == "golf course"
    train = MillionAID(tmp_path)  # the labelled split of the public release is the default
    assert train.split == "train" and train.class_names == ["beach", "runway"]
    assert next(s for s in train if s["class_name"] == "beach")["hierarchy"] == ("water_area", "beach")


def test_nwpu_resisc12_fixture(tmp_path):
    write_class_folders(tmp_path, {c: [f"{c}_{i:03d}.jpg" for i in (1, 2)] for c in NWPURESISC12.classes})
    ds = NWPURESISC12(tmp_path)
    assert ds.split == "all" and len(ds) == 24 and ds.class_names == list(NWPURESISC12.classes)
    assert ds.prompt_names[ds.class_names.index("commercial_area")] == "commercial area"
    (tmp_path / "wetland" / "wetland_001.jpg").unlink()
    (tmp_path / "wetland" / "wetland_002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="partial release: 1 of 12"):
        NWPURESISC12(tmp_path)


@pytest.mark.shared_data
def test_nwpu_resisc12_real(shared_data):
    ds = NWPURESISC12(shared_data / "nwpu_resisc12")
    assert len(ds) == 1200 and len(ds.class_names) == 12
    assert all(sum(s["label"] == k for s in ds.samples) == 100 for k in range(12))
    assert ds[0]["image"].name == "beach_001.jpg"


# --- captions ----------------------------------------------------------------------------------------------------
ENTRIES = [
    ("airport_1.jpg", "test", ["many planes are parked near a building .", "an airport with two runways .",
                               "planes near a terminal .", "a runway and a terminal .", " ."]),
    ("beach_3.jpg", "train", ["waves on a beach .", "a sandy beach .", "yellow sand .", "the sea .", "a beach ."]),
    ("bridge_2.jpg", "test", ["a bridge over a river .", "a river with a bridge .", "cars on a bridge .",
                              "a long bridge .", "a bridge ."]),
]


@pytest.mark.parametrize("cls", [RSICD, RSITMD, UCMCaptions, SydneyCaptions])
def test_caption_json_and_precomp_agree(tmp_path, cls):
    write_caption_dataset(tmp_path, cls.image_dir, cls.json_names[0], ENTRIES, precomp_dir=cls.precomp_dir)
    a = cls(tmp_path, "test", source="json")
    b = cls(tmp_path, "test", source="precomp")
    assert [s["filename"] for s in a] == [s["filename"] for s in b] == ["airport_1.jpg", "bridge_2.jpg"]
    assert [s["captions"] for s in a] == [s["captions"] for s in b]
    # the empty RSICD-style caption " ." is dropped
    assert len(a[0]["captions"]) == 4 and len(a[1]["captions"]) == 5
    assert a[0]["image"] == tmp_path / cls.image_dir / "airport_1.jpg"
    assert len(cls(tmp_path, "train")) == 1


def test_precomp_only_release_and_repeated_filename_lines(tmp_path):
    write_caption_dataset(tmp_path, "imgs", None, ENTRIES, precomp_dir="ucm_precomp")
    assert len(UCMCaptions(tmp_path, "test")) == 2  # auto falls back to precomp
    # the variant that repeats the file name on every caption line
    d = tmp_path / "ucm_precomp"
    rows = [(fn, c) for fn, sp, caps in ENTRIES if sp == "test" for c in caps]
    (d / "test_filename.txt").write_text("".join(f"{fn}\n" for fn, _ in rows))
    (d / "test_caps.txt").write_text("".join(f"{c}\n" for _, c in rows))
    ds = UCMCaptions(tmp_path, "test")
    assert [len(s["captions"]) for s in ds] == [4, 5]


def test_precomp_with_misaligned_caption_count_is_an_error(tmp_path):
    write_caption_dataset(tmp_path, "imgs", None, ENTRIES, precomp_dir="ucm_precomp")
    caps = tmp_path / "ucm_precomp" / "test_caps.txt"
    caps.write_text("".join(caps.read_text().splitlines(keepends=True)[:7]))
    with pytest.raises(DatasetNotFoundError, match="7 caption lines for 2 file names"):
        UCMCaptions(tmp_path, "test")


def test_caption_dataset_missing_images_is_reported(tmp_path):
    write_caption_dataset(tmp_path, "RSICD_images", "dataset_rsicd.json", ENTRIES)
    (tmp_path / "RSICD_images" / "bridge_2.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="bridge_2.jpg"):
        RSICD(tmp_path, "test")


def test_caption_dataset_without_any_captions(tmp_path):
    (tmp_path / "RSICD_images").mkdir()
    with pytest.raises(DatasetNotFoundError, match="dataset_rsicd.json") as e:
        RSICD(tmp_path, "test")
    assert "RSICD_images/<name>.jpg" in str(e.value)


def test_rsicd_scenes_from_class_lists(tmp_path):
    write_caption_dataset(tmp_path, "RSICD_images", "dataset_rsicd.json", ENTRIES)
    (tmp_path / "classes").mkdir()
    (tmp_path / "classes" / "Airport.txt").write_text("airport_1.jpg\n")
    (tmp_path / "classes" / "Bridge.txt").write_text("bridge_2.jpg\n")
    (tmp_path / "classes" / "Beach.txt").write_text("beach_3.jpg\n")
    ds = RSICDScenes(tmp_path, "test")
    assert ds.class_names == ["Airport", "Beach", "Bridge"]
    assert [(s["filename"], s["class_name"]) for s in ds] == [("airport_1.jpg", "Airport"), ("bridge_2.jpg", "Bridge")]
    (tmp_path / "classes" / "Bridge.txt").write_text("")
    with pytest.raises(DatasetNotFoundError, match="in no class list"):
        RSICDScenes(tmp_path, "test")


# --- RSVQA ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, prefix, image_dir", [(RSVQALR, "LR", "Images_LR"), (RSVQAHR, "USGS", "Data")])
def test_rsvqa_skips_inactive_placeholders(tmp_path, cls, prefix, image_dir):
    write_rsvqa(tmp_path, prefix, image_dir, "test")
    ds = cls(tmp_path, "test")
    assert [s["question_id"] for s in ds] == [0, 1, 3, 4]  # question 2 (inactive, on inactive image 5) skipped
    s = ds[1]
    assert (s["type"], s["question"], s["answer_raw"]) == ("count", "How many roads are there?", "4")
    assert s["answer"] == ("between 0 and 10" if prefix == "LR" else "4")  # LR counts binned, HR counts kept
    assert s["image"] == tmp_path / image_dir / "3.tif"


@pytest.mark.parametrize("raw, lr", [
    ("0", "0"), ("1", "between 0 and 10"), ("10", "between 0 and 10"), ("11", "between 10 and 100"),
    ("100", "between 10 and 100"), ("101", "between 100 and 1000"), ("1000", "between 100 and 1000"),
    ("1001", "more than 1000"), ("98765", "more than 1000"),
])
def test_rsvqa_lr_count_bins_at_the_boundaries(raw, lr):
    # VocabEncoder(range_numbers=True): 0 kept, then (0, 10], (10, 100], (100, 1000], > 1000
    assert normalize_answer(raw, "count", "LR") == lr
    assert normalize_answer(raw, "count", "HR") == raw  # HR: range_numbers=False, counts stay numbers


@pytest.mark.parametrize("raw, hr", [
    ("0m2", "0m2"), ("1m2", "between 0m2 and 10m2"), ("10m2", "between 0m2 and 10m2"),
    ("11m2", "between 10m2 and 100m2"), ("100m2", "between 10m2 and 100m2"), ("101m2", "between 100m2 and 1000m2"),
    ("1000m2", "between 100m2 and 1000m2"), ("1001m2", "more than 1000m2"), ("123456m2", "more than 1000m2"),
])
def test_rsvqa_hr_area_bins_at_the_boundaries(raw, hr):
    assert normalize_answer(raw, "area", "HR") == hr


def test_rsvqa_yes_no_and_tokens():
    assert [normalize_answer(a, None, "LR") for a in ("yes", "No", "rural", "Urban.", "no?")] == [
        "yes", "no", "rural", "urban", "no"]
    with pytest.raises(ValueError):
        normalize_answer("yes", None, "MR")


def test_rsvqa_official_split_files(tmp_path):
    # the layout of AutomaticDB/Splits.py: one id space, the other splits' rows are {"id", "active": false}
    write_rsvqa_official(tmp_path, "USGS", "Data", {
        "test": [(0, [("count", "How many buildings are there?", "57"), ("area", "What is the area covered by "
                      "residential buildings?", "1000m2")]),
                 (2, [("presence", "Is there a road?", "yes")])],
        "test_phili": [(1, [("area", "What is the area covered by roads?", "1001m2"), ("comp", "Are there more "
                            "roads than buildings?", "no")])],
    })
    test = RSVQAHR(tmp_path, "test")
    assert [(s["image_id"], s["question_id"], s["type"], s["answer"], s["answer_raw"]) for s in test] == [
        (0, 0, "count", "57", "57"), (0, 1, "area", "between 100m2 and 1000m2", "1000m2"),
        (2, 2, "presence", "yes", "yes")]
    phili = RSVQAHR(tmp_path, "test_phili")
    assert [(s["question_id"], s["answer"]) for s in phili] == [(3, "more than 1000m2"), (4, "no")]
    assert phili[0]["image"] == tmp_path / "Data" / "1.tif"


def test_rsvqa_missing_split_files(tmp_path):
    write_rsvqa(tmp_path, "LR", "Images_LR", "test")
    with pytest.raises(DatasetNotFoundError, match="LR_split_val_questions.json"):
        RSVQALR(tmp_path, "val")
    assert "test_phili" in RSVQAHR.splits


# --- DIOR-RSVG -------------------------------------------------------------------------------------------------------
def test_dior_rsvg_split_lists_global_object_indices(tmp_path):
    images = {  # written out of order: the loader must walk the xml files sorted
        "00003": [("vehicle", (1, 2, 10, 12), "the vehicle on the left")],
        "00001": [("airplane", (5, 5, 30, 30), "the large airplane"),
                  ("airplane", (40, 40, 60, 60), "the small airplane in the lower right")],
        "00002": [("storagetank", (0, 0, 20, 20), "the storage tank at the top left")],
    }
    # global object numbering over sorted files: 0,1 -> 00001; 2 -> 00002; 3 -> 00003
    write_dior_rsvg(tmp_path, images, {"test": [1, 3], "train": [0, 2]})
    ds = DIORRSVG(tmp_path, "test")
    assert [(s["image_id"], s["object_index"]) for s in ds] == [("00001", 1), ("00003", 3)]
    assert ds[0]["box"] == [40.0, 40.0, 60.0, 60.0] and ds[0]["expression"] == "the small airplane in the lower right"
    assert ds[0]["image"] == tmp_path / "JPEGImages" / "00001.jpg"
    tr = DIORRSVG(tmp_path, "train")
    assert [s["prompt_name"] for s in tr] == ["airplane", "storage tank"]


def test_dior_rsvg_index_beyond_annotations(tmp_path):
    write_dior_rsvg(tmp_path, {"00001": [("dam", (0, 0, 9, 9), "the dam")]}, {"test": [0, 4]})
    with pytest.raises(DatasetNotFoundError, match="index 4"):
        DIORRSVG(tmp_path, "test")


# --- PatternCom ------------------------------------------------------------------------------------------------------
def test_patterncom_reads_headerless_rows_and_the_whole_patternnet_pool(tmp_path):
    write_patterncom(tmp_path, {
        "color": [("swimmingpool001.jpg", "color", "blue"), ("swimmingpool002.jpg", "color", "green")],
        "density": [("denseresidential001.jpg", "density", "high")],
    })
    ds = PatternCom(tmp_path)
    assert len(ds) == 3  # no row taken for a header
    s = ds[0]
    assert (s["category"], s["attribute_file"], s["attribute"], s["value"]) == ("swimmingpool", "color", "color", "blue")
    assert s["image"] == tmp_path / "PatternNet" / "images" / "swimming_pool" / "swimmingpool001.jpg"
    assert ds[2]["image"].parent.name == "dense_residential"
    # candidates: every PatternNet image (here 3 csv images + one in each of the 38 class folders)
    assert len(ds.pool) == 41 and {p.parent.name for p in ds.pool} == set(PatternNet.classes)


def test_patterncom_csv_with_a_header_is_not_the_official_format(tmp_path):
    write_patterncom(tmp_path, {"color": [("swimmingpool001.jpg", "color", "blue")]}, header=True)
    with pytest.raises(DatasetNotFoundError, match="e.g. filename"):
        PatternCom(tmp_path)


def test_patterncom_class_keys():
    from geovec.data.patterncom import category_of, group_key, relevance_class

    assert category_of("denseresidential123.jpg") == category_of("dense_residential123.jpg") == "denseresidential"
    assert relevance_class("sparseresidential") == relevance_class("denseresidential") == "residential"
    assert relevance_class("bridge") == relevance_class("overpass") == "roadpass"
    # grouping merges only per attribute (rscir fix_query_attributelabels) ...
    assert group_key("density", "density", "sparseresidential") == "densityresidential"
    assert group_key("existence", "existence", "harbor") == group_key("existence", "existence", "ferryterminal")
    # ... while relevance merges for every attribute (class_mapping)
    assert group_key("color", "color", "bridge") != group_key("color", "color", "overpass")


def test_patterncom_missing_csv(tmp_path):
    (tmp_path / "PatternNet" / "images").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="color.csv"):
        PatternCom(tmp_path)


def test_patterncom_needs_the_whole_patternnet(tmp_path):
    write_patterncom(tmp_path, {"color": [("swimmingpool001.jpg", "color", "blue")]})
    import shutil

    shutil.rmtree(tmp_path / "PatternNet" / "images" / "oil_well")
    with pytest.raises(DatasetNotFoundError, match="partial release: 1 of 38"):
        PatternCom(tmp_path)


# --- GeoTIFF folders -------------------------------------------------------------------------------------------------
def test_geotiff_folder_centres_and_eval_split(tmp_path):
    pts = {0: (51.2, 5.9), 3: (51.3, 6.1), 5: (40.9, -72.4), 10: (41.0, -72.3)}
    for i, (lat, lon) in pts.items():
        write_geotiff(tmp_path / "Images_LR" / f"{i}.tif", lat, lon, seed=i)
    ds = GeoTiffFolder(tmp_path, "all", image_dir="Images_LR")
    assert [s["id"] for s in ds] == ["0", "3", "5", "10"]  # numeric order, not "10" < "3"
    assert ds[1]["lat"] == pytest.approx(51.3, abs=1e-6) and ds[1]["lon"] == pytest.approx(6.1, abs=1e-6)
    assert ds[1]["crs"] == "EPSG:3857" and len(ds[1]["footprint"]) == 5
    assert [s["id"] for s in GeoTiffFolder(tmp_path, "eval", image_dir="Images_LR")] == ["0", "5", "10"]
    assert [s["id"] for s in GeoTiffFolder(tmp_path, "train", image_dir="Images_LR")] == ["3"]


def test_geotiff_without_georeference_is_reported(tmp_path):
    write_image(tmp_path / "Data" / "0.tif", 0)
    with pytest.raises(DatasetNotFoundError, match="no georeference"):
        GeoTiffFolder(tmp_path, image_dir="Data")
