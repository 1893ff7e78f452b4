import json

import numpy as np
import pytest
import torch

from geovec.inputs import GeoVecInputError
from geovec.models.instructions import DEFAULT_QUERY_INSTRUCTIONS, document_instruction
from geovec.train.data import Example, MixtureSampler, build_batch, positive_mask, read_jsonl, write_jsonl


class InstructionsOnly:
    """The two instruction methods build_batch needs, with the defaults the real model uses."""

    def query_instruction(self, task):
        return DEFAULT_QUERY_INSTRUCTIONS[task]

    def document_instruction(self, task, item):
        return document_instruction(item.order)


def _write(tmp_path, lines):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    return p


def test_jsonl_round_trip_and_relative_image_paths(tmp_path):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "imgs" / "a.png")
    p = _write(tmp_path, [
        {"task": "retrieval", "query": {"image": "imgs/a.png"}, "positives": [{"text": "x"}, {"text": "y"}]},
        {"task": "region", "query": {"image": "imgs/a.png", "box": [0, 0, 8, 8]}, "positive": {"text": "z"},
         "negatives": [{"text": "w"}], "group": "g"},
    ])
    ex = read_jsonl(p)
    assert ex[0].query["image"] == str(tmp_path / "imgs" / "a.png")
    assert [x["text"] for x in ex[0].positives] == ["x", "y"]
    assert ex[1].negatives == [{"text": "w"}] and ex[1].group == "g"
    write_jsonl(ex, tmp_path / "out.jsonl")
    assert [e.to_json() for e in read_jsonl(tmp_path / "out.jsonl")] == [e.to_json() for e in ex]


@pytest.mark.parametrize("line, message", [
    ({"task": "nope", "query": {"text": "a"}, "positive": {"text": "b"}}, "task"),
    ({"task": "retrieval", "positive": {"text": "b"}}, "query"),
    ({"task": "retrieval", "query": {"text": "a"}}, "positive"),
    ({"task": "retrieval", "query": {"text": "a"}, "positive": {"txt": "b"}}, "unknown item key"),
    ({"task": "retrieval", "query": {"text": "a"}, "positives": []}, "non-empty"),
])
def test_bad_lines_name_file_line_and_problem(tmp_path, line, message):
    p = _write(tmp_path, [{"task": "retrieval", "query": {"text": "ok"}, "positive": {"text": "ok"}}, line])
    with pytest.raises(GeoVecInputError, match=message) as e:
        read_jsonl(p)
    assert "d.jsonl:2" in str(e.value)


def test_batch_merges_duplicate_candidates_into_multiple_positives():
    ex = [Example("classification", {"text": f"scene {i}"}, [{"text": name}], [{"text": "forest"}])
          for i, name in enumerate(["airport", "beach", "airport"])]
    b = build_batch(ex, InstructionsOnly(), np.random.default_rng(0), hard_negatives=-1)
    texts = [c.text for c in b.candidates]
    assert sorted(texts) == ["airport", "beach", "forest"]  # one copy each
    mask = positive_mask(b.query_pos_keys, b.query_groups, b.candidate_keys, b.candidate_groups)
    a, be, f = texts.index("airport"), texts.index("beach"), texts.index("forest")
    assert mask[0, a] and mask[2, a] and mask[1, be] and not mask[0, be] and not mask[:, f].any()
    assert b.queries[0].instruction == DEFAULT_QUERY_INSTRUCTIONS["classification"]
    assert b.candidates[0].instruction == "Represent the given text."


def test_group_members_are_not_negatives_of_each_other():
    ex = [Example("retrieval", {"text": "cap 1"}, [{"text": "img A"}], group="A"),
          Example("retrieval", {"text": "cap 2"}, [{"text": "img A2"}], group="A"),
          Example("retrieval", {"text": "cap 3"}, [{"text": "img B"}], group="B")]
    b = build_batch(ex, InstructionsOnly(), np.random.default_rng(0))
    mask = positive_mask(b.query_pos_keys, b.query_groups, b.candidate_keys, b.candidate_groups)
    assert mask.tolist() == [[True, True, False], [True, True, False], [False, False, True]]


def test_hard_negative_count_and_positive_sampling():
    ex = [Example("retrieval", {"text": "q"}, [{"text": f"p{i}"} for i in range(5)],
                  [{"text": f"n{i}"} for i in range(4)])]
    b = build_batch(ex, InstructionsOnly(), np.random.default_rng(0), positives_per_query=2, hard_negatives=3)
    assert len(b.query_pos_keys[0]) == 2 and len(b.candidates) == 5
    ex[0].max_negatives = 0  # per-source override
    assert len(build_batch(ex, InstructionsOnly(), np.random.default_rng(0)).candidates) == 1


def test_mixture_sampler_mixed_homogeneous_and_state_roundtrip():
    a = [Example("retrieval", {"text": f"a{i}"}, [{"text": "x"}]) for i in range(10)]
    g = [Example("geo", {"text": f"g{i}"}, [{"lat": 1.0, "lon": 2.0}]) for i in range(10)]
    homo = MixtureSampler([a, g], [1, 1], 6, seed=0, homogeneous=True)
    for _ in range(5):
        assert len({e.task for e in homo.next_examples()}) == 1
    mixed = MixtureSampler([a, g], [1, 1], 40, seed=0)
    tasks = [e.task for e in mixed.next_examples()]
    assert set(tasks) == {"retrieval", "geo"}
    state = json.loads(json.dumps(mixed.state_dict()))  # survives serialisation
    after = [e.query["text"] for e in mixed.next_examples()]
    fresh = MixtureSampler([a, g], [1, 1], 40, seed=99)
    fresh.load_state_dict(state)
    assert [e.query["text"] for e in fresh.next_examples()] == after


def test_positive_mask_shape():
    m = positive_mask([["a"], ["b"]], [None, None], ["a", "b", "c"], [None, None, None])
    assert m.dtype == torch.bool and m.tolist() == [[True, False, False], [False, True, False]]


def test_a_data_source_can_keep_one_question_type(tmp_path):
    from geovec.train.config import DataSource, TrainConfig

    path = tmp_path / "vqa.jsonl"
    write_jsonl([Example("vqa", {"image": "a.png", "text": q}, [{"text": a}]) for q, a in
                 [("How many planes are in the image?", "2"), ("Is there a river?", "yes"),
                  ("What type of scene is this?", "airport"), ("how many cars are there?", "0")]], path)
    cfg = TrainConfig.from_dict({"data": [{"path": str(path), "query_regex": "(?i)^how many"}], "output_dir": str(tmp_path)})
    kept = cfg.data[0].select(read_jsonl(path))
    assert [e.positives[0]["text"] for e in kept] == ["2", "0"]
    assert len(DataSource(str(path)).select(read_jsonl(path))) == 4  # no regex: everything
    with pytest.raises(ValueError, match="no example's query text matches"):
        DataSource(str(path), name="vqa-count", query_regex="^Where").select(read_jsonl(path))
    with pytest.raises(ValueError, match="vqa-count: query_regex .* is not a valid regular expression"):
        DataSource(str(path), name="vqa-count", query_regex="(unclosed").select(read_jsonl(path))


def test_a_data_source_can_keep_one_group_kind(tmp_path):
    from geovec.train.config import DataSource

    path = tmp_path / "region.jsonl"
    write_jsonl([Example("region", {"image": "m.png", "box": [0, 0, 8, 8]}, [{"text": t}], group=g) for t, g in
                 [("a dense forest", "m.png#0"), ("forest", "m.png#0:class"), ("harbor", "m.png#1:class"),
                  ("boats in a harbour", "m.png#1")]], path)
    kept = DataSource(str(path), group_regex=":class$").select(read_jsonl(path))
    assert [e.positives[0]["text"] for e in kept] == ["forest", "harbor"]
    both = DataSource(str(path), group_regex="#1", query_regex="x").select
    with pytest.raises(ValueError, match="no example's query text matches query_regex"):
        both(read_jsonl(path))  # box queries have no text: the two filters apply together
    with pytest.raises(ValueError, match="region-class: no example's group matches group_regex ':klass'"):
        DataSource(str(path), name="region-class", group_regex=":klass").select(read_jsonl(path))
