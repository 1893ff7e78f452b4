"""How the derived VQA questions are asked: the question-answer record (:class:`Pair`), the template phrasings of
each question type, and the training paraphrase bank (:data:`PARAPHRASES`) with number words for counts."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from geovec.data.vqa_vocabulary import NUMBER_WORDS, OBJECT_INDEX, VQAObject


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


def question_kind(pair: Pair) -> str:
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


def fill(template: str, pair: Pair) -> str:
    """A template of :data:`PARAPHRASES` (or the held-out banks) filled with the pair's object(s)."""
    if pair.type == "comp":
        a, b = (OBJECT_INDEX[n] for n in pair.objects)
        return template.format(a=a.words, b=b.words)
    if pair.objects:
        o = OBJECT_INDEX[pair.objects[0]]
        return template.format(word=o.word, words=o.words, a=_article(o.word))
    return template


def rephrase(pair: Pair, bank: dict[str, tuple[str, ...]], rng: np.random.Generator, number_words: float,
             note: str) -> Pair:
    """``pair`` asked with a template of ``bank`` (same meaning and answer); a count answered as a number word
    with probability ``number_words``."""
    from dataclasses import replace

    question = fill(str(rng.choice(bank[question_kind(pair)])), pair)
    answer = pair.answer
    if pair.type == "count" and (number_words >= 1 or (number_words > 0 and rng.random() < number_words)):
        answer = number_word(int(pair.answer))
    return replace(pair, question=question, answer=answer, rule=f"{pair.rule} ({note})")


def paraphrased_pair(pair: Pair, seed: int = 0) -> Pair:
    """``pair`` in a phrasing drawn from its template phrasing and :data:`PARAPHRASES`; counts answered in digits or
    words (:data:`NUMBER_WORD_SHARE`)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"paraphrase|{pair.image}|{pair.question}".encode())])
    kind = question_kind(pair)
    return rephrase(pair, {kind: (pair.question,) + PARAPHRASES[kind]}, rng, NUMBER_WORD_SHARE, "paraphrased")
