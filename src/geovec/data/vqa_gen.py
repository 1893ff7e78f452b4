"""RSVQA-style question/answer pairs derived from image captions, by fixed rules (no model involved).

RSVQA built its questions automatically from annotations (OpenStreetMap objects); this module does the same from
what caption sets have: five captions per image and, where known, the image's scene class. The questions are
*derived*: they are not RSVQA's, nor part of any caption dataset's release. :func:`generate_pairs` works on any
caption set (``[{"image", "captions", "class_name"?}]``, e.g. ``RSICDScenes(root, "train").samples``, or
``(image, captions[, class])`` tuples); :func:`write_rsvqa` writes the RSVQA on-disk format, which
:class:`DerivedVQA` (an :class:`~geovec.data.rsvqa.RSVQA` loader) and :func:`geovec.train.converters.vqa_examples`
read like the released files.

The rules (:data:`OBJECTS` is the object vocabulary: surface forms singular and plural, synonyms, what a mention
implies, and related words):

* **mentions.** Captions are lower-cased and split into words; at each word the longest vocabulary phrase is
  matched ("storage tanks" before "tanks"). A phrase is a *form* of an object (it says the object is there:
  "ships" -> boat) or *related* to it (it makes "absent" unsafe without saying "present": "parking lot" for
  cars, "plants" for trees; relatedness holds both ways). A form also mentions what the object implies (houses ->
  buildings, river -> water), and blocks "no" for its hyponyms ("buildings" for houses).
  A mention within three words after a negation ("no", "not", "without", "nothing", "never", "lack", "n't") is
  negated: it blocks both answers for that object.
* **presence, yes**: an object with a form mention (not negated) in at least one of the image's captions.
* **presence, no**: an object that none of the image's captions mentions in any way (form, synonym, implied,
  related, negated, nor the class name), *and* that is rare in the image's class: mentioned (in any way) for
  fewer than ``no_max_class_rate`` (default 2%) of the class's images in the ``reference`` caption set, a class
  with at least ``min_class_images`` (default 20) images there. Captions leave out many objects that are in an
  image; an object that is common in the class but not in these five captions is never asked as "no".
  Per image at most ``max_presence`` yes and as many no questions (as many no as yes, when there are enough).
* **count**: a number word ("one" ... "twenty") or digits, then up to three modifiers (colours, sizes, shapes),
  then an object form in the matching number ("three planes", "3 planes", "two large white storage tanks";
  never "two sides of", "two rows of trees"). Asked only when every caption that counts the object agrees, no
  caption names a single one ("a plane") or a different number or says "many" / "lots of" / "a large number
  of" ..., no caption mentions the object again beside its count ("many buildings ... four white buildings"),
  and no hyponym is there ("two buildings beside a church": the church is a building too). A single one:
  two *different* captions name one ("a bridge") and none speaks of several. Absent objects (the "no" rule)
  count 0, as many of them per image as counted ones. The answer is the number as a string (RSVQA-HR style).
* **comp**: "more", "fewer", "equal number" questions on two objects counted by the rule above (one of them may
  be an absent object, 0); the form is drawn at random, the "equal" form more often for equal counts.
* **rural_urban**: from the class (:data:`URBAN_CLASSES` / :data:`RURAL_CLASSES`, readable names), kept only when
  the text agrees: urban needs a building mentioned in some caption; rural needs at most one caption that
  mentions a building and none that names a city or a residential area.
* **scene** ("What type of scene is this?"): the readable class name (:func:`geovec.data.prompt_name`).

Everything is deterministic: each image's choices use a generator seeded by ``seed`` and the image's file name,
so an image gets the same questions whatever else is in the set and wherever the set lies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from geovec.data.base import prompt_name
from geovec.data.rsvqa import RSVQA, normalize_answer

QUESTION_TYPES = ("presence", "count", "comp", "rural_urban", "scene")


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
_CITY_WORDS = ("city", "town", "downtown", "urban", "residential", "residential area", "residential areas")

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


@dataclass(frozen=True)
class _Phrase:
    obj: str
    role: str  # "form" | "related"
    plural: bool


def _phrase_table() -> dict[tuple[str, ...], list[_Phrase]]:
    table: dict[tuple[str, ...], list[_Phrase]] = defaultdict(list)
    for o in OBJECTS:
        for forms, plural in ((o.singular, False), (o.plural, True)):
            for f in forms:
                table[tuple(tokenize(f))].append(_Phrase(o.name, "form", plural))
    for o in OBJECTS:
        for r in o.related:
            key = tuple(tokenize(r))
            if not any(p.obj == o.name for p in table.get(key, [])):
                table[key].append(_Phrase(o.name, "related", False))
    return dict(table)


PHRASES = _phrase_table()
_MAX_PHRASE = max(len(k) for k in PHRASES)


def _closure(name: str) -> set[str]:
    """The object and everything it implies, transitively."""
    out, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(OBJECT_INDEX[n].implies)
    return out


_IMPLIED = {o.name: _closure(o.name) for o in OBJECTS}
_HYPONYMS = {o.name: {p.name for p in OBJECTS if o.name in _IMPLIED[p.name] and p.name != o.name} for o in OBJECTS}


def _related_objects() -> dict[str, set[str]]:
    """Objects related either way: A lists a form of B among its related phrases, or B one of A's."""
    forms = {tuple(tokenize(f)): o.name for o in OBJECTS for f in o.singular + o.plural}
    out: dict[str, set[str]] = {o.name: set() for o in OBJECTS}
    for o in OBJECTS:
        for r in o.related:
            other = forms.get(tuple(tokenize(r)))
            if other and other != o.name:
                out[o.name].add(other)
                out[other].add(o.name)
    return out


_RELATED = _related_objects()


@dataclass
class CaptionFacts:
    """What one caption says: ``present`` (objects with a form mention, not negated), ``touched`` (objects
    mentioned in any way, negated ones included), ``counts`` (object -> [(number, kind)], kind ``"number"``
    for "three planes" / "3 planes", ``"article"`` for "a plane", ``"many"`` for "many planes") and
    ``phrases`` (object -> the phrases that mention it)."""

    present: set[str]
    touched: set[str]
    counts: dict[str, list[tuple[int, str]]]
    phrases: dict[str, list[str]]


def _match(toks: list[str], i: int) -> tuple[str, ...] | None:
    """The longest vocabulary phrase starting at ``toks[i]``."""
    for n in range(min(_MAX_PHRASE, len(toks) - i), 0, -1):
        key = tuple(toks[i:i + n])
        if key in PHRASES:
            return key
    return None


def _is_negator(tok: str) -> bool:
    return tok in NEGATORS or tok.endswith("n't")


def caption_facts(caption: str) -> CaptionFacts:
    toks = tokenize(caption)
    present, touched, negated_objs = set(), set(), set()
    counts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    phrases: dict[str, list[str]] = defaultdict(list)
    i = 0
    while i < len(toks):
        key = _match(toks, i)
        if key is None:
            i += 1
            continue
        negated = any(_is_negator(t) for t in toks[max(0, i - NEGATION_WINDOW):i])
        for p in PHRASES[key]:
            names = _IMPLIED[p.obj] if p.role == "form" else {p.obj}
            for name in names:
                touched.add(name)
                phrases[name].append(" ".join(key))
                if p.role == "form":  # a hypernym ("buildings") blocks "no" for its hyponyms ("houses"),
                    touched.update(_HYPONYMS[name])  # and a mention blocks it for related objects, both ways
                    touched.update(_RELATED[name])
            if negated:
                negated_objs.update(names)
            elif p.role == "form":
                present.update(names)
                stated = _count_before(toks, i, p.plural)
                if stated is None and p.plural:
                    stated = (0, "plural")  # "planes", "some planes": more than one, how many unsaid
                if stated is not None:
                    counts[p.obj].append(stated)
        i += len(key)
    present -= negated_objs  # an object under a negation is asked neither way
    return CaptionFacts(present, touched, {o: c for o, c in counts.items() if o not in negated_objs}, dict(phrases))


def _number(tok: str) -> int | None:
    if tok.isdigit():
        return int(tok)
    return NUMBER_WORDS.get(tok)


def _count_before(toks: list[str], i: int, plural: bool) -> tuple[int, str] | None:
    """The count a caption states for the object phrase at ``toks[i]``: a number word or digits (then up to
    three modifiers) in the phrase's grammatical number, "a"/"an" + singular, or a "many" quantifier."""
    j, mods = i - 1, 0
    while j >= 0 and mods < 3 and (toks[j] in MODIFIERS or toks[j].endswith("-shaped")):
        j, mods = j - 1, mods + 1
    if j < 0:
        return None
    n = _number(toks[j])
    if n is not None and n > 0:
        return (n, "number") if (n == 1) != plural else None
    if not plural and toks[j] in ("a", "an"):
        return 1, "article"
    if plural and any(" ".join(toks[max(0, j - 3):j + 1]).endswith(m) for m in MANY_WORDS):
        return 0, "many"
    return None


@dataclass
class ImageFacts:
    present: Counter  # object -> number of captions that say it is there
    touched: set[str]  # objects mentioned in any way by a caption or the class name
    counts: dict[str, int]  # object -> the count the captions agree on


def image_facts(captions: Sequence[str], class_name: str | None = None) -> ImageFacts:
    """Facts over an image's captions; the readable class name also counts as a (blocking-only) mention."""
    per = [caption_facts(c) for c in captions]
    present: Counter = Counter()
    touched: set[str] = set()
    stated: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for f in per:
        present.update(f.present)
        touched |= f.touched
        for o, c in f.counts.items():
            stated[o].extend(c)
    if class_name:
        touched |= caption_facts(prompt_name(class_name)).touched
    counts = {}
    for o, c in stated.items():
        if OBJECT_INDEX[o].mass or not present[o] or any(present[h] for h in _HYPONYMS[o]):
            continue  # "two buildings near a church": the church is a building too
        kinds = [kind for _, kind in c]
        numbers = {n for n, kind in c if kind in ("number", "article")}
        if "number" in kinds:
            if len(numbers) != 1:
                continue  # the captions disagree ("two planes" / "three planes" / "a plane")
        elif len({" ".join(tokenize(c)) for c, f in zip(captions, per)
                  if any(kind == "article" for _, kind in f.counts.get(o, []))}) < 2 or \
                "plural" in kinds or "many" in kinds:
            continue  # a single one needs two different captions naming one, and none speaking of several
        if "many" in kinds:
            continue  # "many buildings" elsewhere: a stated "five buildings" is likely a part of them
        if any(len(f.counts.get(o, [])) > 1 and any(kind == "number" for _, kind in f.counts[o]) for f in per):
            continue  # "many buildings ... surrounded by four white buildings": a count next to other mentions
        counts[o] = numbers.pop()
    return ImageFacts(present, touched, counts)


def class_rates(samples: Iterable[Any]) -> tuple[dict[Any, Counter], Counter]:
    """Per class: in how many images each object is mentioned in any way (the "touched" set); and the number of
    images per class. Samples as for :func:`generate_pairs`."""
    touched: dict[Any, Counter] = defaultdict(Counter)
    n: Counter = Counter()
    for s in samples:
        _, caps, cls = _unpack(s)
        f = image_facts(caps, cls)
        touched[cls].update(f.touched)
        n[cls] += 1
    return dict(touched), n


def _unpack(s: Any) -> tuple[str, list[str], str | None]:
    if isinstance(s, dict):
        caps = s.get("captions") or [c for c in s.get("caption_slots", []) if c.strip(" .")]
        return str(s["image"]), [c for c in caps if c and c.strip(" .")], s.get("class_name")
    s = tuple(s)
    return str(s[0]), [c for c in s[1] if c and c.strip(" .")], s[2] if len(s) > 2 else None


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


#: objects a scene usually has one of: asked in the singular ("Is there a desert?", not "deserts")
SINGULAR_QUESTIONS = frozenset({"airport", "beach", "desert", "forest", "port", "railway station", "sea"})


def presence_questions(o: VQAObject) -> tuple[str, ...]:
    """The phrasings a presence question on ``o`` is drawn from."""
    if o.name in SINGULAR_QUESTIONS:
        return (f"Is there {_article(o.word)} {o.word} in the image?",
                f"Is {_article(o.word)} {o.word} present in the image?",
                f"Does this image contain {_article(o.word)} {o.word}?")
    if o.mass:
        return f"Is there {o.word} in the image?", f"Is {o.word} present in the image?", f"Does this image contain {o.word}?"
    return (f"Are there {o.words} in the image?", f"Is there {_article(o.word)} {o.word} in the image?",
            f"Is {_article(o.word)} {o.word} present in the image?", f"Does this image contain {o.words}?")


def count_questions(o: VQAObject) -> tuple[str, ...]:
    """The phrasings a count question on ``o`` is drawn from."""
    return (f"How many {o.words} are there in the image?", f"What is the number of {o.words}?",
            f"How many {o.words} are in the image?")


def comp_questions(a: VQAObject, b: VQAObject) -> dict[str, str]:
    """relation ("equal", "more", "fewer") -> the comparison question on ``a`` and ``b``."""
    return {"equal": f"Is the number of {a.words} equal to the number of {b.words}?",
            "more": f"Are there more {a.words} than {b.words}?", "fewer": f"Are there fewer {a.words} than {b.words}?"}


def presence_question(o: VQAObject, rng: np.random.Generator) -> str:
    return str(rng.choice(presence_questions(o)))


def count_question(o: VQAObject, rng: np.random.Generator) -> str:
    return str(rng.choice(count_questions(o)))


SCENE_QUESTIONS = ("What type of scene is this?", "What kind of place is shown in the image?",
                   "What is the scene category of this image?")
RURAL_URBAN_QUESTION = "Is it a rural or an urban area?"

#: training paraphrases (``generate_pairs(paraphrase=True)``): question kind -> templates (``{a}`` is the article of
#: ``{word}``; comp: ``{a}``, ``{b}`` the two objects). They never use the words of the held-out phrasings of
#: :mod:`geovec.data.vqa_phrasing` (picture, photo, visible, spot, you, outnumber, numerous, "as many", land-use).
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "presence_plural": ("Can {words} be seen in the image?", "Does the image show {words}?",
                        "Are {words} shown in this image?", "Are there any {words} in the scene?",
                        "Is there at least one {word} in the image?"),
    "presence_singular": ("Can {a} {word} be seen in the image?", "Does the image show {a} {word}?",
                          "Is {a} {word} shown in this image?", "Is there {a} {word} in the scene?"),
    "presence_mass": ("Can {word} be seen in the image?", "Does the image show {word}?", "Is {word} shown in this image?",
                      "Is there any {word} in the scene?"),
    "count": ("How many {words} does the image show?", "How many {words} are shown?", "Give the number of {words}.",
              "How many {words} are present in the scene?", "What number of {words} appear in the image?"),
    "comp_more": ("Is the number of {a} greater than the number of {b}?", "Does the image show more {a} than {b}?",
                  "Are there more {a} than {b} in the scene?"),
    "comp_fewer": ("Is the number of {a} smaller than the number of {b}?", "Are there less {a} than {b}?",
                   "Does the image show fewer {a} than {b}?"),
    "comp_equal": ("Are the numbers of {a} and {b} the same?", "Is there the same number of {a} and {b}?",
                   "Does the image show equally many {a} and {b}?"),
    "rural_urban": ("Is the area urban or rural?", "Does the image show an urban or a rural area?",
                    "Is this scene rural or urban?"),
    "scene": ("What scene is shown in the image?", "Which scene class does this image belong to?",
              "What does this image show?"),
}
#: share of count answers written as a number word ("three") instead of digits in paraphrased pairs
NUMBER_WORD_SHARE = 0.5
_NUMBER_NAMES = {n: w for w, n in NUMBER_WORDS.items()}


def number_word(n: int) -> str:
    """``3`` -> ``"three"`` (0-20 as words, larger counts in digits: how people write them)."""
    return _NUMBER_NAMES.get(n, str(n))


def answer_value(answer: str) -> str:
    """An answer's meaning for comparing wordings: number words and digits as the digits ("three" -> "3")."""
    a = answer.strip().lower()
    return str(NUMBER_WORDS[a]) if a in NUMBER_WORDS else a


def question_kind(pair: "Pair") -> str:
    """The template key of a pair: ``presence_plural`` / ``_singular`` / ``_mass``, ``count``, ``comp_<relation>``,
    ``rural_urban``, ``scene``."""
    if pair.type == "presence":
        o = OBJECT_INDEX[pair.objects[0]]
        return "presence_singular" if o.name in SINGULAR_QUESTIONS else "presence_mass" if o.mass else "presence_plural"
    if pair.type == "comp":
        return f"comp_{pair.relation}"
    if pair.type in ("count", "rural_urban", "scene"):
        return pair.type
    raise ValueError(f"no phrasings for question type {pair.type!r}")


def fill(template: str, pair: "Pair") -> str:
    """A template of :data:`PARAPHRASES` (or the held-out banks) filled with the pair's object(s)."""
    if pair.type == "comp":
        a, b = (OBJECT_INDEX[n] for n in pair.objects)
        return template.format(a=a.words, b=b.words)
    if pair.objects:
        o = OBJECT_INDEX[pair.objects[0]]
        return template.format(word=o.word, words=o.words, a=_article(o.word))
    return template


def rephrase(pair: "Pair", bank: dict[str, tuple[str, ...]], rng: np.random.Generator, number_words: float,
             note: str) -> "Pair":
    """``pair`` asked with a template of ``bank`` (same meaning and answer); a count answered as a number word
    with probability ``number_words``."""
    from dataclasses import replace

    question = fill(str(rng.choice(bank[question_kind(pair)])), pair)
    answer = pair.answer
    if pair.type == "count" and (number_words >= 1 or (number_words > 0 and rng.random() < number_words)):
        answer = number_word(int(pair.answer))
    return replace(pair, question=question, answer=answer, rule=f"{pair.rule} ({note})")


def paraphrased_pair(pair: "Pair", seed: int = 0) -> "Pair":
    """``pair`` in a phrasing drawn from its template phrasing and :data:`PARAPHRASES`; counts answered in digits or
    words (:data:`NUMBER_WORD_SHARE`)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"paraphrase|{pair.image}|{pair.question}".encode())])
    kind = question_kind(pair)
    return rephrase(pair, {kind: (pair.question,) + PARAPHRASES[kind]}, rng, NUMBER_WORD_SHARE, "paraphrased")


@dataclass
class Pair:
    image: str
    type: str
    question: str
    answer: str
    rule: str  # why this answer (evidence)
    class_name: str | None = None
    objects: tuple[str, ...] = ()  # the object(s) asked about (presence, count: one; comp: two, in question order)
    relation: str = ""  # comp: "more", "fewer" or "equal" (what the question asks)

    def to_dict(self) -> dict:
        return {"image": self.image, "type": self.type, "question": self.question, "answer": self.answer,
                "rule": self.rule, "class_name": self.class_name}


def generate_pairs(samples: Sequence[Any], reference: Sequence[Any] | None = None, seed: int = 0,
                   max_presence: int = 2, max_count: int = 2, max_comp: int = 2, no_max_class_rate: float = 0.02,
                   min_class_images: int = 20, types: Sequence[str] = QUESTION_TYPES,
                   paraphrase: bool = False) -> list[Pair]:
    """Question/answer pairs for every image of ``samples`` by the rules of this module.

    ``samples``: dicts with ``image``, ``captions`` (or ``caption_slots``) and optionally ``class_name``, or
    ``(image, captions[, class])`` tuples. ``reference``: the caption set whose per-class object rates decide
    the "no" answers (default: ``samples`` itself; the dev task uses the train captions). Without a class, an
    image belongs to one class-less group. ``types``: which question types to generate. ``paraphrase``: ask each
    pair in a phrasing drawn from the template and :data:`PARAPHRASES`, counts in digits or words
    (:func:`paraphrased_pair`; for training: the dev task keeps the templates).
    """
    unknown = set(types) - set(QUESTION_TYPES)
    if unknown:
        raise ValueError(f"unknown question types {sorted(unknown)}; choose from {list(QUESTION_TYPES)}")
    rates, n_class = class_rates(samples if reference is None else reference)
    out: list[Pair] = []
    for s in samples:
        image, caps, cls = _unpack(s)
        if not caps:
            continue
        rng = _rng(seed, Path(image).name)
        f = image_facts(caps, cls)
        readable = prompt_name(cls) if cls else None
        pairs: list[Pair] = []
        n_ref = n_class.get(cls, 0)
        class_rate = rates.get(cls, Counter())
        no = [o.name for o in OBJECTS if o.name not in f.touched and n_ref and n_ref >= min_class_images
              and class_rate[o.name] / n_ref < no_max_class_rate]
        no_rule = {n: f"not mentioned; mentioned for {100 * class_rate[n] / n_ref:.1f}% of {n_ref} reference "
                      f"images of class {cls}" for n in no}
        if "presence" in types:
            yes = sorted(f.present)
            k_yes = min(max_presence, len(yes))
            chosen_yes = [yes[i] for i in sorted(rng.choice(len(yes), k_yes, replace=False))] if k_yes else []
            k_no = min(max(k_yes, 1), len(no))
            chosen_no = [no[i] for i in sorted(rng.choice(len(no), k_no, replace=False))] if k_no else []
            for name in chosen_yes:
                pairs.append(Pair(image, "presence", presence_question(OBJECT_INDEX[name], rng), "yes",
                                  f"yes: mentioned in {f.present[name]} of {len(caps)} captions", cls, (name,)))
            for name in chosen_no:
                pairs.append(Pair(image, "presence", presence_question(OBJECT_INDEX[name], rng), "no",
                                  f"no: {no_rule[name]}", cls, (name,)))
        counted = sorted(f.counts)
        # absent objects (the "no" rule) count 0: as many of them as counted ones, for count and comp
        absent = [n for n in no if not OBJECT_INDEX[n].mass]
        zeros = [absent[i] for i in sorted(rng.choice(len(absent), min(len(absent), len(counted), max_count),
                                                      replace=False))] if counted and absent else []
        if "count" in types and counted:
            k = min(max_count, len(counted))
            for i in sorted(rng.choice(len(counted), k, replace=False)):
                o = OBJECT_INDEX[counted[i]]
                pairs.append(Pair(image, "count", count_question(o, rng), str(f.counts[o.name]),
                                  f"count: {f.counts[o.name]} {o.words} stated, no caption disagrees", cls, (o.name,)))
            for name in zeros:
                o = OBJECT_INDEX[name]
                pairs.append(Pair(image, "count", count_question(o, rng), "0",
                                  f"count: 0, {o.words} absent by the presence rule ({no_rule[name]})", cls, (name,)))
        if "comp" in types and counted:
            known = {**{n: f.counts[n] for n in counted}, **{n: 0 for n in zeros}}
            combos = [(a, b) for a in counted for b in sorted(known) if a != b and (b not in counted or a < b)]
            for i in sorted(rng.choice(len(combos), min(max_comp, len(combos)), replace=False)):
                a, b = combos[i]
                if rng.random() < 0.5:
                    a, b = b, a
                pairs.append(_comp_pair(image, OBJECT_INDEX[a], OBJECT_INDEX[b], known[a], known[b], rng, cls))
        if "rural_urban" in types and readable:
            ans = _rural_urban(readable, caps)
            if ans:
                pairs.append(Pair(image, "rural_urban", RURAL_URBAN_QUESTION, ans,
                                  f"{ans}: class {readable}, captions agree", cls))
        if "scene" in types and readable:
            pairs.append(Pair(image, "scene", str(rng.choice(SCENE_QUESTIONS)), readable, f"scene: class {cls}", cls))
        out.extend([paraphrased_pair(p, seed) for p in pairs] if paraphrase else pairs)
    return out


def _comp_pair(image, a: VQAObject, b: VQAObject, na: int, nb: int, rng, cls) -> Pair:
    """A "more" / "fewer" / "equal number" question on two counts: equal counts get the "equal" form half of the
    time, different ones one time in five; otherwise "more" or "fewer", half and half."""
    u = rng.random()
    if (na == nb and u < 0.5) or (na != nb and u < 0.2):
        rel, ans = "equal", na == nb
    elif rng.random() < 0.5:
        rel, ans = "more", na > nb
    else:
        rel, ans = "fewer", na < nb
    return Pair(image, "comp", comp_questions(a, b)[rel], "yes" if ans else "no",
                f"comp: {na} {a.words} vs {nb} {b.words}", cls, (a.name, b.name), rel)


def _rural_urban(readable: str, captions: Sequence[str]) -> str | None:
    with_building = sum("building" in caption_facts(c).present for c in captions)
    text = " ".join(f" {' '.join(tokenize(c))} " for c in captions)
    city = any(f" {w} " in text for w in _CITY_WORDS)
    if readable in URBAN_CLASSES and with_building >= 1:
        return "urban"
    if readable in RURAL_CLASSES and with_building <= 1 and not city:
        return "rural"
    return None


# --- the RSVQA on-disk format ----------------------------------------------------------------------------------
def write_rsvqa(pairs: Sequence[Pair], out_dir: str | Path, split: str = "train", prefix: str = "VQA",
                image_dir: str = "images", link: str = "symlink") -> dict[str, Any]:
    """Write ``pairs`` as one RSVQA split: ``<prefix>_split_<split>_{questions,answers,images}.json`` (the
    released fields; every row ``active``) and the image folder ``<image_dir>/``, where each image is
    ``<id><suffix>`` (a symbolic link to the source image, or a copy with ``link="copy"``; a copy also where
    links are not allowed), named in the image row's ``"file"``. Image, question and answer ids count from 0 in
    pair order. Extra fields: questions carry the ``rule`` that produced them, images their ``source`` path.
    Returns the paths and counts."""
    if link not in ("symlink", "copy"):
        raise ValueError("link must be 'symlink' or 'copy'")
    out = Path(out_dir)
    folder = out / image_dir
    folder.mkdir(parents=True, exist_ok=True)
    image_ids: dict[str, int] = {}
    images: list[dict] = []
    questions: list[dict] = []
    answers: list[dict] = []
    for p in pairs:
        if p.image not in image_ids:
            image_ids[p.image] = len(images)
            src = Path(p.image).absolute()
            name = f"{len(images)}{src.suffix.lower()}"
            _place(src, folder / name, link)
            images.append({"id": len(images), "questions_ids": [], "active": True, "file": name,
                           "source": str(src)})
        iid = image_ids[p.image]
        qid = len(questions)
        questions.append({"id": qid, "img_id": iid, "type": p.type, "question": p.question, "answers_ids": [qid],
                          "active": True, "rule": p.rule})
        answers.append({"id": qid, "question_id": qid, "answer": p.answer, "active": True})
        images[iid]["questions_ids"].append(qid)
    files = {}
    for key, rows in (("questions", questions), ("answers", answers), ("images", images)):
        files[key] = out / f"{prefix}_split_{split}_{key}.json"
        files[key].write_text(json.dumps({key: rows}, indent=0))
    return {"files": {k: str(v) for k, v in files.items()}, "image_dir": str(folder), "n_images": len(images),
            "n_questions": len(questions), "types": dict(Counter(q["type"] for q in questions))}


def _place(src: Path, dst: Path, link: str) -> None:
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if link == "symlink":
        try:
            os.symlink(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


class DerivedVQA(RSVQA):
    """A split written by :func:`write_rsvqa` (``<root>/VQA_split_<split>_*.json`` + ``<root>/images/``), read
    by the RSVQA loader. Answers are normalised the RSVQA-HR way (counts stay numbers): LR's bins would put
    nearly every count stated in a caption into "between 0 and 10"."""

    name = "derived VQA"
    url = "generated by geovec.data.vqa_gen from captions (derived questions, not RSVQA)"
    layout = "<root>/VQA_split_{split}_{questions,answers,images}.json + <root>/images/<id>.<ext>"
    prefix = "VQA"
    image_dir = "images"
    vocab = "HR"
    splits = ("train", "val", "test")


def pairs_to_samples(pairs: Sequence[Pair], vocab: str = "HR") -> list[dict[str, Any]]:
    """The samples :class:`DerivedVQA` reads back from :func:`write_rsvqa` of ``pairs``, without the files: the
    same ids, order and normalised answers, with the source image paths."""
    image_ids: dict[str, int] = {}
    out = []
    for qid, p in enumerate(pairs):
        iid = image_ids.setdefault(p.image, len(image_ids))
        out.append({"image": Path(p.image), "image_id": iid, "question_id": qid, "type": p.type,
                    "question": p.question, "answer": normalize_answer(p.answer, p.type, vocab),
                    "answer_raw": p.answer, "rule": p.rule, "class_name": p.class_name})
    return out


def rsicd_pairs(rsicd_root: str | Path, split: str = "train", seed: int = 0, **options) -> list[Pair]:
    """Pairs from one RSICD split (``RSICDScenes``: captions + class), the "no" rule measured on RSICD ``train``
    captions."""
    from geovec.data.captions import RSICDScenes

    samples = RSICDScenes(rsicd_root, split).samples
    reference = samples if split == "train" else RSICDScenes(rsicd_root, "train").samples
    return generate_pairs(samples, reference=reference, seed=seed, **options)


__all__ = ["OBJECTS", "QUESTION_TYPES", "DerivedVQA", "Pair", "VQAObject", "caption_facts", "generate_pairs",
           "image_facts", "pairs_to_samples", "rsicd_pairs", "tokenize", "write_rsvqa"]
