"""The object vocabulary of the derived VQA questions (:data:`OBJECTS`: surface forms, synonyms, what a mention
implies, related words) and the word lists the caption rules read (numbers, negations, modifiers, "many")."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VQAObject:
    """One object of the vocabulary. ``singular`` / ``plural``: the surface forms that mention it (the first of
    each is the question's word); ``implies``: objects a mention of it also mentions; ``related``: phrases that
    make "no" unsafe without saying "yes"; ``mass``: uncountable (no count questions, "Is there grass?")."""

    name: str
    singular: tuple[str, ...]
    plural: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    mass: bool = False

    @property
    def word(self) -> str:
        return self.singular[0]

    @property
    def words(self) -> str:
        return self.plural[0] if self.plural else self.singular[0]


def _o(name, singular, plural=(), implies=(), related=(), mass=False) -> VQAObject:
    return VQAObject(name, tuple(singular), tuple(plural), tuple(implies), tuple(related), mass)


_COURTS = ("court", "courts", "sports field", "sports fields", "sports ground", "field", "fields")
OBJECTS: tuple[VQAObject, ...] = (
    _o("tree", ["tree"], ["trees"],
       related=["plant", "plants", "vegetation", "bush", "bushes", "shrub", "shrubs", "grove", "orchard", "greenbelt",
                "greenery", "green belt", "garden", "gardens", "park"]),
    _o("forest", ["forest", "woods", "woodland", "jungle"], ["forests", "woodlands"], implies=["tree"],
       related=["tree", "trees", "vegetation", "plants"]),
    _o("building", ["building"], ["buildings"],
       related=["roof", "roofs", "structure", "structures", "construction", "constructions", "block", "blocks",
                "residential", "residential area", "residential areas", "commercial area", "industrial area",
                "city", "town", "village", "downtown", "urban", "center", "centre", "stadium", "gym", "gymnasium",
                "terminal", "terminals", "station", "school", "campus", "hotel", "hotels", "apartment",
                "apartments", "dwelling", "dwellings", "home", "homes", "housing", "warehouse", "warehouses",
                "shed", "sheds", "tower", "towers", "greenhouse", "greenhouses", "plant", "architecture",
                "neighborhood", "community", "resort", "temple", "palace", "hall", "hospital", "mall"]),
    _o("house", ["house", "villa", "cottage"], ["houses", "villas", "cottages"], implies=["building"],
       related=["residential", "residential area", "residential areas", "dwelling", "dwellings", "home", "homes",
                "housing", "apartment", "apartments", "neighborhood", "community", "village", "resort", "hotel"]),
    _o("church", ["church", "cathedral", "chapel"], ["churches", "cathedrals", "chapels"], implies=["building"],
       related=["temple", "temples", "tower"]),
    _o("factory", ["factory", "workshop"], ["factories", "workshops"], implies=["building"],
       related=["industrial", "industrial area", "warehouse", "warehouses", "plant", "plants", "mill"]),
    _o("road", ["road", "street", "highway", "avenue", "lane", "freeway", "expressway"],
       ["roads", "streets", "highways", "avenues", "lanes", "freeways", "expressways"],
       related=["crossroads", "crossroad", "intersection", "intersections", "junction", "roundabout", "path", "paths",
                "track", "tracks", "traffic", "way", "ways", "parking lot", "overpass", "viaduct", "bridge",
                "bridges", "car", "cars", "vehicle", "vehicles", "driveway", "ramp", "ramps", "alley"]),
    _o("car", ["car", "vehicle", "truck", "bus", "van"], ["cars", "vehicles", "trucks", "buses", "vans"],
       related=["parking lot", "parking lots", "parking", "traffic", "parked", "parking spaces", "parking space",
                "road", "roads", "highway", "street", "streets"]),
    _o("parking lot", ["parking lot", "parking", "car park", "parking area", "parking space", "parking place"],
       ["parking lots", "car parks", "parking areas", "parking spaces", "parking places"],
       related=["parked", "car", "cars", "vehicle", "vehicles", "apron", "square"]),
    _o("water", ["water"], implies=(), mass=True,
       related=["wave", "waves", "ripple", "ripples", "spray", "fountain", "wet", "swamp", "marsh", "wetland",
                "bay", "coast", "shore", "beach", "bridge", "bridges", "boat", "boats", "ship", "ships", "island",
                "fish"]),
    _o("river", ["river", "stream", "canal", "creek"], ["rivers", "streams", "canals", "creeks"], implies=["water"],
       related=["water", "bridge", "bridges", "bank", "banks", "riverbank", "lake", "lakes", "channel", "channels",
                "ditch", "waterway"]),
    _o("lake", ["lake", "reservoir"], ["lakes", "reservoirs"], implies=["water"],
       related=["water", "pond", "ponds", "pool", "sea"]),
    _o("pond", ["pond"], ["ponds"], implies=["water"],
       related=["water", "lake", "lakes", "pool", "pools", "fish", "fishpond", "fishponds"]),
    _o("sea", ["sea", "ocean"], ["seas", "oceans"], implies=["water"],
       related=["water", "wave", "waves", "beach", "beaches", "coast", "shore", "bay", "ripples", "spray",
                "seawater", "port", "harbor", "harbour"]),
    _o("beach", ["beach", "coast", "shore", "seashore", "seaside", "coastline"],
       ["beaches", "coasts", "shores", "coastlines"],
       related=["sand", "sands", "wave", "waves", "sea", "ocean", "spray"]),
    _o("swimming pool", ["swimming pool", "pool"], ["swimming pools", "pools"], implies=["water"],
       related=["water", "resort", "villa", "villas"]),
    _o("boat", ["boat", "ship", "yacht", "vessel", "ferry", "sailboat"],
       ["boats", "ships", "yachts", "vessels", "ferries", "sailboats"],
       related=["port", "ports", "harbor", "harbour", "dock", "docks", "wharf", "wharfs", "pier", "piers", "marina",
                "docked", "moored", "sea", "ocean", "river", "lake"]),
    _o("port", ["port", "harbor", "harbour", "wharf", "dock", "pier", "marina", "quay"],
       ["ports", "harbors", "harbours", "wharfs", "wharves", "docks", "piers", "marinas", "quays"],
       implies=["water"], related=["boat", "boats", "ship", "ships", "docked", "moored", "container", "containers",
                                   "crane", "cranes", "sea", "ocean", "river", "bridge"]),
    _o("plane", ["plane", "airplane", "aircraft", "aeroplane", "jet"],
       ["planes", "airplanes", "aircrafts", "aeroplanes", "jets"],
       related=["airport", "airports", "apron", "runway", "runways", "terminal", "terminals", "hangar"]),
    _o("runway", ["runway", "airstrip"], ["runways", "airstrips"],
       related=["airport", "airports", "apron", "taxiway", "plane", "planes", "track", "tracks", "road", "roads"]),
    _o("airport", ["airport", "airfield"], ["airports", "airfields"],
       related=["runway", "runways", "plane", "planes", "apron", "terminal", "terminals", "hangar"]),
    _o("storage tank", ["storage tank", "tank", "oil tank", "storage tanker"], ["storage tanks", "tanks", "oil tanks"],
       related=["tube", "tubes", "pipe", "pipes", "pipeline", "cylinder", "cylinders", "factory", "factories",
                "industrial", "industrial area", "plant", "refinery"]),
    _o("tennis court", ["tennis court", "tennis field"], ["tennis courts", "tennis fields"], related=_COURTS),
    _o("basketball court", ["basketball court", "basketball field"], ["basketball courts", "basketball fields"],
       related=_COURTS + ("playground", "playgrounds")),
    _o("baseball field", ["baseball field", "baseball diamond", "baseball court"],
       ["baseball fields", "baseball diamonds", "baseball courts"], related=_COURTS + ("playground", "playgrounds")),
    _o("football field", ["football field", "soccer field", "football pitch", "soccer pitch", "football ground",
                          "football court"],
       ["football fields", "soccer fields", "football pitches", "soccer pitches", "football grounds"],
       related=_COURTS + ("playground", "playgrounds", "stadium", "stadiums", "track", "tracks", "lawn", "lawns",
                          "grass", "grassland")),
    _o("playground", ["playground", "running track", "sports ground", "athletic field", "track field"],
       ["playgrounds", "running tracks", "athletic fields"],
       related=("stadium", "stadiums", "track", "tracks", "exercise yard", "football field", "football fields",
                "basketball field", "basketball fields", "court", "courts", "field", "fields", "school", "schools",
                "gym", "gymnasium", "sports field", "sports fields", "park")),
    _o("stadium", ["stadium", "gymnasium", "gym", "arena"], ["stadiums", "gymnasiums", "gyms", "arenas"],
       related=["playground", "playgrounds", "football field", "football fields", "track", "tracks", "stand",
                "stands", "bleachers", "court", "courts", "field", "fields", "bird's nest"]),
    _o("railway", ["railway", "railroad", "rail", "railway track", "train track", "railway line", "railroad track"],
       ["railways", "railroads", "rails", "railway tracks", "train tracks", "railway lines", "railroad tracks"],
       related=["train", "trains", "track", "tracks", "station", "stations", "platform", "platforms"]),
    _o("railway station", ["railway station", "train station", "railroad station"],
       ["railway stations", "train stations", "railroad stations"], implies=["railway", "building"],
       related=["station", "stations", "train", "trains", "platform", "platforms", "terminal", "terminals"]),
    _o("bridge", ["bridge", "footbridge"], ["bridges", "footbridges"],
       related=["viaduct", "viaducts", "overpass", "overpasses", "flyover", "crossing", "dam"]),
    _o("viaduct", ["viaduct", "overpass", "flyover", "interchange"],
       ["viaducts", "overpasses", "flyovers", "interchanges"],
       related=["bridge", "bridges", "ramp", "ramps", "road", "roads", "highway", "highways", "crossroads",
                "intersection"]),
    _o("grass", ["grass", "lawn", "meadow", "grassland", "turf", "pasture"],
       ["grasses", "lawns", "meadows", "grasslands", "pastures"], mass=True,
       related=["vegetation", "plants", "plant", "field", "fields", "farmland", "farmlands", "golf", "green land",
                "playground", "football field", "park", "garden", "gardens"]),
    _o("farmland", ["farmland", "farm", "cropland", "farm land", "paddy field", "farmland field"],
       ["farmlands", "farms", "croplands", "crops", "paddy fields"], mass=True,
       related=["field", "fields", "crop", "plot", "plots", "greenhouse", "greenhouses", "plants", "vegetation",
                "meadow", "meadows", "pasture", "cultivated", "planted", "plantation", "orchard", "land"]),
    _o("desert", ["desert", "dune", "sand dune"], ["deserts", "dunes", "sand dunes"],
       related=["sand", "sands", "bareland", "barelands", "bare land", "barren", "gobi", "wasteland"]),
    _o("sand", ["sand"], ["sands"], mass=True,
       related=["beach", "beaches", "desert", "deserts", "dune", "dunes", "bareland", "barelands", "bare land",
                "soil", "land"]),
    _o("bare land", ["bare land", "bareland", "bare ground", "wasteland", "barren land", "open land", "empty land",
                     "bare soil", "bare field"],
       ["bare lands", "barelands", "wastelands"], mass=True,
       related=["desert", "deserts", "sand", "sands", "soil", "land", "ground", "barren", "construction",
                "construction site", "dirt", "open space", "open spaces", "field", "fields", "empty"]),
    _o("mountain", ["mountain", "hill", "peak"], ["mountains", "hills", "peaks"],
       related=["rock", "rocks", "cliff", "cliffs", "ridge", "ridges", "slope", "slopes", "hillside", "valley",
                "valleys", "terrain", "mountainous", "hilly"]),
    _o("island", ["island", "islet"], ["islands", "islets"], related=["isle", "peninsula", "land"]),
    _o("snow", ["snow"], ["snows"], mass=True, related=["ice", "glacier", "frost", "frozen"]),
)
OBJECT_INDEX = {o.name: o for o in OBJECTS}

#: readable class names asked as "urban" / "rural" (other classes get no rural/urban question)
URBAN_CLASSES = frozenset({"dense residential", "medium residential", "commercial", "commercial area", "city center",
                           "industrial", "industrial area", "railway station", "school", "church", "square",
                           "residential", "buildings", "intersection", "mobile home park"})
RURAL_CLASSES = frozenset({"farmland", "forest", "meadow", "desert", "mountain", "agricultural land",
                           "chaparral", "rectangular farmland", "circular farmland", "wetland", "terrace",
                           "annual crop", "permanent crop", "pasture", "herbaceous vegetation", "snowberg"})
CITY_WORDS = ("city", "town", "downtown", "urban", "residential", "residential area", "residential areas")

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NEGATORS = frozenset({"no", "not", "without", "nothing", "never", "lack", "none", "nor"})
NEGATION_WINDOW = 3
#: words allowed between a number and its object ("two large white storage tanks")
MODIFIERS = frozenset("""
    large small big little tiny huge giant tall high low long short wide narrow broad thin new old
    white gray grey black red blue green yellow brown orange khaki silver dark light pink purple colorful
    colourful golden beige bright
    round circular oval square rectangular triangular irregular curved straight parallel identical similar same
    different adjacent neat orderly semicircular semi-circular cylindrical spherical columnar arc-shaped
    l-shaped u-shaped fan-shaped ring-shaped sized
    other more main major empty busy crowded parked docked moored standing
""".split())
#: vague "many" quantifiers: they contradict a stated count of 3 or less
MANY_WORDS = ("many", "lots of", "a lot of", "numerous", "plenty of", "dozens of", "hundreds of", "a large number of",
              "large numbers of", "countless", "a great number of", "a great many")


def tokenize(text: str) -> list[str]:
    """Lower-cased words; in-word ``' -`` kept ("bird's", "semi-circle")."""
    return re.findall(r"[a-z0-9]+(?:['\-][a-z0-9]+)*", text.lower())
