"""The short-answer weights artifact (qa/short_answer_weights.json) and the command that
rewrites it (``python -m citeqa.evaluation.short_answers --fit --write``)."""

from __future__ import annotations

import json
import shutil

from citeqa.evaluation.short_answers import write_weights
from citeqa.qa import short_answer

QUESTIONS = ["How many troops were sent?", "When did it open?", "Who is the ambassador?",
             "Where is the institute based?", "What did the report disclose?", "Why did they go?",
             "Which cities will get teachers?"]


def test_every_level_has_weights_for_every_type_a_question_can_have():
    levels = short_answer.load_weights()
    assert set(levels) == set(short_answer.LEVELS)
    kinds = {short_answer._question(q).type for q in QUESTIONS}
    assert kinds == set(short_answer._TYPE_FIT)  # every type is asked above, and has its weights
    for level in ("syntax", "mentions", "rules"):
        assert kinds <= set(levels[level].by_type)
        for kind in kinds:
            weights = short_answer._weights(kind, level)
            assert weights and all(isinstance(v, float | int) for v in weights.values())
    assert short_answer._weights("yes_no", "syntax") == levels["yes_no"].weights


def test_a_changed_weight_in_the_file_is_the_weight_used(tmp_path):
    path = tmp_path / "weights.json"
    body = json.loads(short_answer.WEIGHTS_FILE.read_text(encoding="utf-8"))
    body["syntax"]["weights"]["near"] = -123.0
    path.write_text(json.dumps(body), encoding="utf-8")
    assert short_answer.load_weights(path)["syntax"].weights["near"] == -123.0
    assert short_answer.load_weights()["syntax"].weights["near"] != -123.0


def test_writing_keeps_the_other_levels_and_round_trips(tmp_path):
    path = tmp_path / "weights.json"
    shutil.copy(short_answer.WEIGHTS_FILE, path)
    body = json.loads(path.read_text(encoding="utf-8"))
    body["mentions"]["weights"]["near"] = 99.0  # another level: must survive the rewrite
    path.write_text(json.dumps(body), encoding="utf-8")
    write_weights(path)
    written = short_answer.load_weights(path)
    assert written["syntax"].weights == short_answer._WEIGHTS
    assert written["syntax"].by_type == short_answer._TYPE_FIT
    assert written["mentions"].weights["near"] == 99.0
    assert "about" in json.loads(path.read_text(encoding="utf-8"))
