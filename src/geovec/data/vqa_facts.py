"""What an image's captions say, by fixed rules: which objects they mention (or negate), and the counts they agree
on (:func:`caption_facts`, :func:`image_facts`); how often a class's images mention each object (:func:`class_rates`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from geovec.data.base import prompt_name
from geovec.data.vqa_vocabulary import (MANY_WORDS, MODIFIERS, NEGATION_WINDOW, NEGATORS, NUMBER_WORDS, OBJECT_INDEX,
                                        OBJECTS, tokenize)


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
    images per class. Samples as for :func:`geovec.data.vqa_gen.generate_pairs`."""
    touched: dict[Any, Counter] = defaultdict(Counter)
    n: Counter = Counter()
    for s in samples:
        _, caps, cls = sample_parts(s)
        f = image_facts(caps, cls)
        touched[cls].update(f.touched)
        n[cls] += 1
    return dict(touched), n


def sample_parts(s: Any) -> tuple[str, list[str], str | None]:
    """(image, captions, class name or None) of a caption-set sample: a dict or an ``(image, captions[, class])``
    tuple; empty captions dropped."""
    if isinstance(s, dict):
        caps = s.get("captions") or [c for c in s.get("caption_slots", []) if c.strip(" .")]
        return str(s["image"]), [c for c in caps if c and c.strip(" .")], s.get("class_name")
    s = tuple(s)
    return str(s[0]), [c for c in s[1] if c and c.strip(" .")], s[2] if len(s) > 2 else None
