"""Readable, prompt-friendly names for the native class names of the scene datasets (one table for all).

The native name is the class folder / list name as released (``RailwayStation``, ``railway_station``,
``storagetanks``, ``SeaLake`` ...). :data:`CLASS_NAMES` gives, per dataset, every official class and the words
used in text prompts ("a remote sensing image of {}."), so that benchmark loaders and training name a class the
same way. :func:`readable_name` looks a native name up (exactly, then ignoring case and ``_ - space``) and falls
back to splitting CamelCase / ``snake_case`` for names outside the table (e.g. object classes).

The names follow the datasets' own wording, split into words. Only a few are expanded where the bare word would
not name a scene: AID / RSICD ``Center`` -> "city center", UCM ``agricultural`` -> "agricultural land",
PatternNet ``oil_gas_field`` -> "oil and gas field", EuroSAT ``SeaLake`` -> "sea or lake", Million-AID ``apron``
-> "airport apron" and ``works`` -> "industrial works". AID and WHU-RS19 keep ``commercial``, ``industrial``,
``parking``, ``residential`` as single words, as the RS-TransCLIP zero-shot protocol names them
(github.com/elkhouryk/RS-TransCLIP, ``datasets/WHURS19/class_changes.txt``, ``run_dataset_formatting.py``).
"""

from __future__ import annotations

import re

CLASS_NAMES: dict[str, dict[str, str]] = {
    "AID": {
        "Airport": "airport", "BareLand": "bare land", "BaseballField": "baseball field", "Beach": "beach",
        "Bridge": "bridge", "Center": "city center", "Church": "church", "Commercial": "commercial",
        "DenseResidential": "dense residential", "Desert": "desert", "Farmland": "farmland", "Forest": "forest",
        "Industrial": "industrial", "Meadow": "meadow", "MediumResidential": "medium residential",
        "Mountain": "mountain", "Park": "park", "Parking": "parking", "Playground": "playground", "Pond": "pond",
        "Port": "port", "RailwayStation": "railway station", "Resort": "resort", "River": "river",
        "School": "school", "SparseResidential": "sparse residential", "Square": "square", "Stadium": "stadium",
        "StorageTanks": "storage tanks", "Viaduct": "viaduct",
    },
    "UCM": {
        "agricultural": "agricultural land", "airplane": "airplane", "baseballdiamond": "baseball diamond",
        "beach": "beach", "buildings": "buildings", "chaparral": "chaparral", "denseresidential": "dense residential",
        "forest": "forest", "freeway": "freeway", "golfcourse": "golf course", "harbor": "harbor",
        "intersection": "intersection", "mediumresidential": "medium residential",
        "mobilehomepark": "mobile home park", "overpass": "overpass", "parkinglot": "parking lot", "river": "river",
        "runway": "runway", "sparseresidential": "sparse residential", "storagetanks": "storage tanks",
        "tenniscourt": "tennis court",
    },
    "PatternNet": {
        "airplane": "airplane", "baseball_field": "baseball field", "basketball_court": "basketball court",
        "beach": "beach", "bridge": "bridge", "cemetery": "cemetery", "chaparral": "chaparral",
        "christmas_tree_farm": "christmas tree farm", "closed_road": "closed road",
        "coastal_mansion": "coastal mansion", "crosswalk": "crosswalk", "dense_residential": "dense residential",
        "ferry_terminal": "ferry terminal", "football_field": "football field", "forest": "forest",
        "freeway": "freeway", "golf_course": "golf course", "harbor": "harbor", "intersection": "intersection",
        "mobile_home_park": "mobile home park", "nursing_home": "nursing home", "oil_gas_field": "oil and gas field",
        "oil_well": "oil well", "overpass": "overpass", "parking_lot": "parking lot", "parking_space": "parking space",
        "railway": "railway", "river": "river", "runway": "runway", "runway_marking": "runway marking",
        "shipping_yard": "shipping yard", "solar_panel": "solar panel", "sparse_residential": "sparse residential",
        "storage_tank": "storage tank", "swimming_pool": "swimming pool", "tennis_court": "tennis court",
        "transformer_station": "transformer station", "wastewater_treatment_plant": "wastewater treatment plant",
    },
    "RESISC45": {
        "airplane": "airplane", "airport": "airport", "baseball_diamond": "baseball diamond",
        "basketball_court": "basketball court", "beach": "beach", "bridge": "bridge", "chaparral": "chaparral",
        "church": "church", "circular_farmland": "circular farmland", "cloud": "cloud",
        "commercial_area": "commercial area", "dense_residential": "dense residential", "desert": "desert",
        "forest": "forest", "freeway": "freeway", "golf_course": "golf course",
        "ground_track_field": "ground track field", "harbor": "harbor", "industrial_area": "industrial area",
        "intersection": "intersection", "island": "island", "lake": "lake", "meadow": "meadow",
        "medium_residential": "medium residential", "mobile_home_park": "mobile home park", "mountain": "mountain",
        "overpass": "overpass", "palace": "palace", "parking_lot": "parking lot", "railway": "railway",
        "railway_station": "railway station", "rectangular_farmland": "rectangular farmland", "river": "river",
        "roundabout": "roundabout", "runway": "runway", "sea_ice": "sea ice", "ship": "ship", "snowberg": "snowberg",
        "sparse_residential": "sparse residential", "stadium": "stadium", "storage_tank": "storage tank",
        "tennis_court": "tennis court", "terrace": "terrace", "thermal_power_station": "thermal power station",
        "wetland": "wetland",
    },
    # the 12-class subset in shared/data: ``farmland`` pools rectangular and circular farmland, ``residential``
    # dense, medium and sparse residential
    "NWPU-RESISC12": {
        "beach": "beach", "commercial_area": "commercial area", "desert": "desert", "farmland": "farmland",
        "forest": "forest", "industrial_area": "industrial area", "island": "island", "lake": "lake",
        "mountain": "mountain", "residential": "residential", "river": "river", "wetland": "wetland",
    },
    "WHU-RS19": {
        "Airport": "airport", "Beach": "beach", "Bridge": "bridge", "Commercial": "commercial", "Desert": "desert",
        "Farmland": "farmland", "Forest": "forest", "Industrial": "industrial", "Meadow": "meadow",
        "Mountain": "mountain", "Park": "park", "Parking": "parking", "Pond": "pond", "Port": "port",
        "Residential": "residential", "River": "river", "Viaduct": "viaduct", "footballField": "football field",
        "railwayStation": "railway station",
    },
    # the 51 leaf classes (torchgeo ``MillionAID.multi_class_categories``, its typo "bapsketball_court" fixed)
    "Million-AID": {
        "apartment": "apartment", "apron": "airport apron", "bare_land": "bare land", "baseball_field": "baseball field",
        "basketball_court": "basketball court", "beach": "beach", "bridge": "bridge", "cemetery": "cemetery",
        "church": "church", "commercial_area": "commercial area", "dam": "dam", "desert": "desert",
        "detached_house": "detached house", "dry_field": "dry field", "forest": "forest", "golf_course": "golf course",
        "greenhouse": "greenhouse", "ground_track_field": "ground track field", "helipad": "helipad",
        "ice_land": "ice land", "intersection": "intersection", "island": "island", "lake": "lake", "meadow": "meadow",
        "mine": "mine", "mobile_home_park": "mobile home park", "oil_field": "oil field", "orchard": "orchard",
        "paddy_field": "paddy field", "parking_lot": "parking lot", "pier": "pier", "quarry": "quarry",
        "railway": "railway", "river": "river", "road": "road", "rock_land": "rock land", "roundabout": "roundabout",
        "runway": "runway", "solar_power_plant": "solar power plant", "sparse_shrub_land": "sparse shrub land",
        "stadium": "stadium", "storage_tank": "storage tank", "substation": "substation",
        "swimming_pool": "swimming pool", "tennis_court": "tennis court", "terraced_field": "terraced field",
        "train_station": "train station", "viaduct": "viaduct", "wastewater_plant": "wastewater plant",
        "wind_turbine": "wind turbine", "works": "industrial works",
    },
    # RSICD classes/<Class>.txt: the 30 AID classes plus ``playfields``
    "RSICD": {
        "Airport": "airport", "BareLand": "bare land", "BaseballField": "baseball field", "Beach": "beach",
        "Bridge": "bridge", "Center": "city center", "Church": "church", "Commercial": "commercial",
        "DenseResidential": "dense residential", "Desert": "desert", "Farmland": "farmland", "Forest": "forest",
        "Industrial": "industrial", "Meadow": "meadow", "MediumResidential": "medium residential",
        "Mountain": "mountain", "Park": "park", "Parking": "parking", "Playground": "playground", "Pond": "pond",
        "Port": "port", "RailwayStation": "railway station", "Resort": "resort", "River": "river",
        "School": "school", "SparseResidential": "sparse residential", "Square": "square", "Stadium": "stadium",
        "StorageTanks": "storage tanks", "Viaduct": "viaduct", "playfields": "playfields",
    },
    "EuroSAT": {
        "AnnualCrop": "annual crop", "Forest": "forest", "HerbaceousVegetation": "herbaceous vegetation",
        "Highway": "highway", "Industrial": "industrial", "Pasture": "pasture", "PermanentCrop": "permanent crop",
        "Residential": "residential", "River": "river", "SeaLake": "sea or lake",
    },
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _flatten() -> tuple[dict[str, str], dict[str, str]]:
    exact: dict[str, str] = {}
    loose: dict[str, str] = {}
    for dataset, table in CLASS_NAMES.items():
        for native, readable in table.items():
            for d, k in ((exact, native), (loose, _key(native))):
                if d.setdefault(k, readable) != readable:  # one native spelling, one readable name
                    raise ValueError(f"class name table: {native!r} ({dataset}) is both {d[k]!r} and {readable!r}")
    return exact, loose


_EXACT, _LOOSE = _flatten()


def split_words(native: str) -> str:
    """``DenseResidential`` / ``dense_residential`` / ``railwayStation`` -> ``dense residential`` ..."""
    s = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", native)  # CamelCase
    s = re.sub(r"[_\-]+", " ", s)
    return re.sub(r"\s+", " ", s).strip().lower()


def readable_name(native: str) -> str:
    """The table's readable name of a native class name; names outside the table are split into words."""
    if native in _EXACT:
        return _EXACT[native]
    return _LOOSE.get(_key(native)) or split_words(native)
