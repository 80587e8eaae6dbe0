from datetime import datetime, timezone

import pytest

from pipelines.encoding import encode_example
from pipelines.rows import RowParser, RowRejected, split_line
from tests.pipelines.tiny import HEADER, tiny_recipe

GOOD = {"user": "u1", "amount": "12.5", "score": "", "color": "red", "when": "2024-03-01T10:00:00Z",
        "is_fraud": "Yes", "kind": "b", "tags": "x|y", "spend": "3.25"}


def _fields(header=HEADER, **changes):
    row = {**GOOD, **changes}
    return [row[name] for name in header]


@pytest.fixture(scope="module")
def parser():
    return RowParser(tiny_recipe(), HEADER)


def test_a_good_row_becomes_typed_values_and_missing_ones_are_absent(parser):
    key, values = parser.parse(_fields())
    assert key == "u1"
    assert values == {"amount": 12.5, "color": "red",
                      "when": int(datetime(2024, 3, 1, 10, tzinfo=timezone.utc).timestamp()),
                      "is_fraud": 1.0, "kind": 1, "tags": [1.0, 1.0], "spend": 3.25}
    _, values = parser.parse(_fields(is_fraud="", kind="", tags="", spend="", color=" ", when=""))
    assert values == {"amount": 12.5}


@pytest.mark.parametrize("text", ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00", "2024-03-01 12:00:00+02:00",
                                  "1709287200"])
def test_timestamps_iso_with_or_without_zone_and_epoch_seconds_agree(parser, text):
    assert parser.parse(_fields(when=text))[1]["when"] == 1709287200


@pytest.mark.parametrize("text, expected", [("0", 0.0), ("1", 1.0), ("TRUE", 1.0), ("false", 0.0),
                                            ("no", 0.0), ("1.0", 1.0)])
def test_binary_labels_accept_the_usual_spellings(parser, text, expected):
    assert parser.parse(_fields(is_fraud=text))[1]["is_fraud"] == expected


def test_columns_may_come_in_any_order():
    shuffled = list(reversed(HEADER))
    assert RowParser(tiny_recipe(), shuffled).parse(_fields(shuffled)) == RowParser(
        tiny_recipe(), HEADER).parse(_fields())


def test_quoted_fields_keep_their_delimiters():
    assert split_line('u1,"12,5x",3') == ["u1", "12,5x", "3"]
    assert split_line("a,,b") == ["a", "", "b"]


@pytest.mark.parametrize("changes, kind, words", [
    ({"amount": "12,5x"}, "unparsable_number", ["'amount'", "'12,5x'"]),
    ({"score": "inf"}, "not_finite", ["'score'", "'inf'", "float32"]),
    ({"amount": "-1"}, "below_min", ["'amount'", "-1 < 0"]),
    ({"amount": "5000"}, "above_max", ["'amount'", "5000 > 1000"]),
    ({"amount": ""}, "missing_required", ["'amount'"]),
    ({"user": ""}, "missing_required", ["'user'", "split key"]),
    ({"when": "2024-02-30T25:61:00"}, "unparsable_timestamp", ["'when'", "2024-02-30T25:61:00", "ISO-8601"]),
    ({"is_fraud": "2"}, "label_not_allowed", ["'is_fraud'", "'2'", "0, 1, true, false, yes, no"]),
    ({"kind": "d"}, "unknown_class", ["'kind'", "'d'", "a, b, c"]),
    ({"tags": "x|z"}, "unknown_class", ["'tags'", "'z'", "x, y"]),
    ({"spend": "lots"}, "unparsable_number", ["'spend'", "'lots'"]),
])
def test_each_bad_value_is_rejected_with_a_reason_naming_column_and_value(parser, changes, kind, words):
    with pytest.raises(RowRejected) as caught:
        parser.parse(_fields(**changes))
    assert caught.value.kind == kind
    for word in words:
        assert word in caught.value.message


def test_a_short_line_is_a_wrong_field_count(parser):
    with pytest.raises(RowRejected, match=r"wrong number of fields: 3 \(the header has 9\)") as caught:
        parser.parse_line("u1,3,4")
    assert caught.value.kind == "wrong_field_count"


def test_a_header_without_a_recipe_column_is_refused():
    with pytest.raises(ValueError, match="spend"):
        RowParser(tiny_recipe(), HEADER[:-1])


def test_encoded_example_follows_the_dataset_layout(parser):
    import tensorflow as tf

    _, values = parser.parse(_fields(score=""))
    example = tf.train.Example.FromString(encode_example(values)).features.feature
    assert "score" not in example
    assert list(example["amount"].float_list.value) == [12.5]
    assert list(example["color"].bytes_list.value) == [b"red"]
    assert list(example["when"].int64_list.value) == [1709287200]
    assert list(example["kind"].int64_list.value) == [1]
    assert list(example["tags"].float_list.value) == [1.0, 1.0]


def _built_by_tensorflow(values):
    import tensorflow as tf

    example = tf.train.Example()
    for key, value in values.items():
        feature = example.features.feature[key]
        if isinstance(value, float):
            feature.float_list.value.append(value)
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        elif isinstance(value, str):
            feature.bytes_list.value.append(value.encode("utf-8"))
        else:
            feature.float_list.value.extend(value)
    return example


@pytest.mark.parametrize("values", [
    {},
    {"amount": 12.5, "color": "red", "when": 1709287200, "kind": 0, "tags": [1.0, 0.0, 1.0]},
    {"negative": -5, "largest": 2 ** 63 - 1, "smallest": -(2 ** 63), "zero": 0.0, "tiny": 1e-40},
    {"overflow": 1e39, "minus_overflow": -1e39, "nan": float("nan"), "rounded": 0.1},
    {"unicode ключ": "värde ✓", "empty": "", "long": "x" * 300, "k" * 200: [0.5] * 100},
])
def test_encoded_example_parses_as_the_example_tensorflow_builds(values):
    import tensorflow as tf

    ours = tf.train.Example.FromString(encode_example(values))
    assert ours.SerializeToString(deterministic=True) == _built_by_tensorflow(values).SerializeToString(
        deterministic=True)


def test_encoding_refuses_what_a_tf_example_cannot_hold():
    with pytest.raises(TypeError, match=r"cannot encode 'x' = \{1\} of type set"):
        encode_example({"x": {1}})
    with pytest.raises(TypeError, match="a list must hold numbers"):
        encode_example({"x": ["a"]})
    with pytest.raises(ValueError, match="must fit in int64"):
        encode_example({"x": 2 ** 63})
