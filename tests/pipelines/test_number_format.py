"""Numbers written with a decimal comma and digit-group separators (data.source.decimal, thousands)."""

import pytest

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.recipe import RecipeError
from mtl_tf.recipe.loader import parse_recipe
from pipelines.csv_to_tfrecords import run
from pipelines.rows import RowParser, RowRejected
from tests.pipelines.test_bad_input import _examples, _one_split_recipe, _write
from tests.pipelines.tiny import HEADER, tiny_recipe
from tests.recipe.test_data_options import with_data
from tests.recipe.test_loader import error_of


def _parser(**source):
    raw = tiny_recipe().model_dump(mode="json")
    raw["data"]["source"].update(source)
    return RowParser(parse_recipe(raw, check=False), HEADER)


def test_a_decimal_comma_and_thousands_points_read_as_the_numbers_they_write():
    parser = _parser(delimiter=";", decimal=",", thousands=".")
    _, values = parser.parse_line("u1;234,5;-1.000,25;red;;1;b;x;12.000")
    assert (values["amount"], values["score"], values["spend"]) == (234.5, -1000.25, 12000.0)


def test_with_a_decimal_comma_a_point_that_is_no_separator_rejects_the_row_with_a_hint():
    parser = _parser(delimiter=";", decimal=",")
    assert parser.parse_line("u1;12,5;0,5;red;;1;b;x;3")[1]["amount"] == 12.5
    with pytest.raises(RowRejected) as err:
        parser.parse_line("u1;12.5;0,5;red;;1;b;x;3")
    assert err.value.kind == "unparsable_number"
    assert "'12.5'" in str(err.value) and "data.source.decimal" in str(err.value)


def test_the_default_format_is_unchanged():
    _, values = _parser().parse_line("u1,1e3,0.5,red,,1,b,x,3.25")
    assert (values["amount"], values["score"], values["spend"]) == (1000.0, 0.5, 3.25)
    with pytest.raises(RowRejected, match="unparsable number in 'amount': '12,5'$"):
        _parser(delimiter=";").parse_line("u1;12,5;0.5;red;;1;b;x;3")


def test_a_european_file_makes_the_dataset_of_the_same_table_written_with_points(tmp_path):
    rows = [(f"u{i}", 10 + 37.25 * i, 0.5 - 0.125 * (i % 3), "red" if i % 2 else "blue", "", i % 2, "ab"[i % 2],
             "x", 1500.5 * i) for i in range(12)]

    def written(folder, delimiter, number):
        text = delimiter.join(HEADER) + "\n" + "".join(
            delimiter.join(number(v) if isinstance(v, float) else str(v) for v in row) + "\n" for row in rows)
        _write(folder, text.encode())
        return folder

    plain = written(tmp_path / "plain", ",", repr)
    european = written(tmp_path / "european", ";",
                       lambda v: f"{v:,.4f}".replace(",", " ").replace(".", ","))  # 1 037,2500
    specs = []
    for folder, source in ((plain, {}), (european, {"delimiter": ";", "decimal": ",", "thousands": " "})):
        result = run(_one_split_recipe(folder, **source))
        assert result.rows_written == {"train": 12} and not result.rows_rejected
        specs.append(DatasetSpec.read(result.path))
    assert sorted(map(str, _examples(specs[0]))) == sorted(map(str, _examples(specs[1])))
    stats = [{f.name: f.stats for f in spec.features} for spec in specs]
    assert stats[0]["amount"] == stats[1]["amount"] and stats[0]["amount"].mean > 100


@pytest.mark.parametrize("source, fragment", [
    ({"decimal": ";"}, "data.source.decimal: received ';'; allowed: '.' or ','"),
    ({"thousands": "#"}, "data.source.thousands: must be one of ',', '.', \"'\", '_', ' ' or null; received '#'"),
    ({"decimal": ",", "thousands": ","}, "thousands and decimal must differ; received ',' for both"),
    ({"thousands": ","}, "thousands ',' is also the delimiter"),
    ({"delimiter": "whitespace", "thousands": " "}, "thousands ' ' is also the delimiter"),
])
def test_number_format_mistakes_are_one_line(source, fragment):
    message = error_of(with_data(source=source))
    assert fragment in message and "\n" not in message


def test_a_sequence_separator_equal_to_a_number_mark_is_one_line():
    raw = tiny_recipe().model_dump(mode="json")
    raw["data"]["source"].update(decimal=",")
    raw["data"]["features"].append({"name": "history", "kind": "sequence", "length": 3, "separator": ","})
    with pytest.raises(RecipeError) as err:
        parse_recipe(raw, check=False)
    message = str(err.value)
    assert "feature 'history': its separator ',' is also a mark of the source's numbers" in message
    assert "\n" not in message
