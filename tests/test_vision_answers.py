"""Reading providers' replies: JSON, code fences, prose around it, odd confidences, garbage."""

from __future__ import annotations

import pytest

from proxy.vision.answers import Unparsable, parse_confidence, parse_reply


@pytest.mark.parametrize("reply", [
    '{"answer": "A cat", "confidence": 0.8}',
    '```json\n{"answer": "A cat", "confidence": 0.8}\n```',
    'Sure. {"answer": "A cat", "confidence": 0.8} Anything else?',
    'I see {braces} first, then {"answer": "A cat", "confidence": "80%"}',
    '```\n{"answer": "A cat", "confidence": 80}\n```',
])
def test_answer_and_confidence_are_found(reply):
    reading = parse_reply(reply)
    assert reading.answer == "A cat"
    assert reading.confidence == pytest.approx(0.8)


def test_a_bare_number_is_an_answer():
    assert parse_reply('{"answer": 42, "confidence": "0.9"}').answer == "42"
    assert parse_reply('{"answer": 2.5, "confidence": 1}').answer == "2.5"


@pytest.mark.parametrize("reply", [
    '{"answer": "A cat"}',
    '{"answer": "A cat", "confidence": "very"}',
    '{"answer": "A cat", "confidence": 250}',
    '{"answer": "A cat", "confidence": true}',
    '```json\n{"answer": "A cat", "confidence": null}\n```',
])
def test_an_answer_without_a_usable_confidence_is_a_low_confidence_answer(reply):
    reading = parse_reply(reply)
    assert (reading.answer, reading.confidence) == ("A cat", 0.0)


@pytest.mark.parametrize("reply", [
    "It is a cat.",
    '{"answer": "", "confidence": 0.9}',
    '{"answer": null, "confidence": 0.5}',
    '{"confidence": 0.5}',
    "[1, 2, 3]",
])
def test_unusable_replies_are_refused(reply):
    with pytest.raises(Unparsable):
        parse_reply(reply)


@pytest.mark.parametrize(("value", "expected"), [
    (0.5, 0.5), ("0.5", 0.5), (50, 0.5), ("50%", 0.5), ("5%", 0.05), (1, 1.0), (0, 0.0),
    (-0.1, None), (101, None), ("nan", None), (None, None), ([0.5], None),
])
def test_confidence_forms(value, expected):
    assert parse_confidence(value) == (pytest.approx(expected) if expected is not None else None)


def test_predictions_are_read_and_sorted():
    reading = parse_reply('{"answer": "Dog", "confidence": 0.7, "predictions": ['
                          '{"label": "Wolf", "confidence": 0.2}, {"label": "Dog", "confidence": 0.7},'
                          '{"label": "", "confidence": 0.1}, "junk"]}')
    assert [(p.label, p.confidence) for p in reading.predictions] == [("Dog", 0.7), ("Wolf", 0.2)]
