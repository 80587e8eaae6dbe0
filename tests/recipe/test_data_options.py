"""Recipe options for real files: headerless sources, missing-value markers, label values, per-file splits."""

import copy

import pytest
import yaml

from mtl_tf.recipe import RecipeError, load_recipe, parse_recipe
from mtl_tf.recipe.loader import resolved_yaml
from tests.recipe.test_loader import BASE, error_of

BY_FILE = [{"files": "*.data.gz", "train": 1.0}, {"files": "*.test.gz", "validation": 0.5, "test": 0.5}]


def with_data(source=None, split=None, task=None):
    raw = copy.deepcopy(BASE)
    raw["data"]["source"].update(source or {})
    if split is not None:
        raw["data"]["split"] = split
    raw["tasks"][0].update(task or {})
    return raw


def test_defaults_keep_a_headed_csv_keyed_split_and_plain_labels():
    recipe = parse_recipe(BASE, check=False)
    source, split, task = recipe.data.source, recipe.data.split, recipe.tasks[0]
    assert (source.header, source.columns, source.na_values) == (True, None, [])
    assert (split.key, split.by_file, split.split_names()) == ("customer_id", None, ["train", "validation", "test"])
    assert (task.positive, task.na_values) == (None, [])


def test_headerless_source_with_columns_na_values_and_positive_labels():
    raw = with_data(source={"header": False, "columns": ["customer_id", "amount", "channel", "is_fraud"],
                            "na_values": ["?"]},
                    task={"positive": ["50000+."], "na_values": ["unknown"]})
    recipe = parse_recipe(raw, check=False)
    assert recipe.data.source.columns == ["customer_id", "amount", "channel", "is_fraud"]
    assert recipe.tasks[0].positive == ["50000+."]


@pytest.mark.parametrize("source, fragment", [
    ({"header": False}, "data.source: header: false needs 'columns'"),
    ({"columns": ["a", "b"]}, "data.source: 'columns' names the columns of files without a header line; "
                              "set header: false"),
    ({"header": False, "columns": ["customer_id", "customer_id"]}, "column names must be unique"),
    ({"header": False, "columns": ["customer_id", "amount", "chanel", "is_fraud"]},
     "data.source.columns has no column 'channel' (feature 'channel') (did you mean 'chanel'?); received 4 columns"),
    ({"header": False, "columns": ["amount", "channel", "is_fraud"]},
     "data.source.columns has no column 'customer_id' (data.split.key)"),
    ({"na_values": "?"}, "data.source.na_values: Input should be a valid list"),
    ({"heder": False}, "data.source.heder: unknown key 'heder' (did you mean 'header'?)"),
])
def test_source_mistakes_are_one_clear_line(source, fragment):
    message = error_of(with_data(source=source))
    assert fragment in message and "\n" not in message


@pytest.mark.parametrize("delimiter, kept", [(",", ","), (";", ";"), ("\t", "\t"), (" ", " "), ("|", "|"),
                                             ("\\s+", "\\s+"), ("whitespace", "\\s+")])
def test_a_delimiter_is_one_character_or_runs_of_whitespace(delimiter, kept):
    assert parse_recipe(with_data(source={"delimiter": delimiter}), check=False).data.source.delimiter == kept


@pytest.mark.parametrize("delimiter, fragment", [
    ("::", "received '::'"),
    ("\\t", "received '\\\\t' (a tab is \"\\t\" in double quotes in YAML"),
    ('"', "received '\"'"),
    ("\n", "received '\\n'"),
    ("", "received ''"),
    ("\\s*", "received '\\\\s*'"),
])
def test_a_delimiter_that_preprocessing_cannot_use_is_one_line_naming_what_is_allowed(delimiter, fragment):
    message = error_of(with_data(source={"delimiter": delimiter}))
    assert message.startswith("data.source.delimiter: must be one character") and "\n" not in message
    assert "'\\s+' (alias 'whitespace')" in message and fragment in message


@pytest.mark.parametrize("given, kept", [
    ("utf-8", "utf-8"), ("UTF8", "utf-8"), ("utf-8-sig", "utf-8"), ("latin1", "iso8859-1"),
    ("Latin-1", "iso8859-1"), ("cp1252", "cp1252"), ("windows-1252", "cp1252"), ("ISO-8859-15", "iso8859-15"),
    ("koi8-r", "koi8-r"), ("mac-roman", "mac-roman"), ("EUC-JP", "euc_jp"), ("euc-kr", "euc_kr"),
    ("gb2312", "gb2312"),
])
def test_an_encoding_whose_ascii_bytes_are_ascii_is_kept_under_its_codec_name(given, kept):
    assert parse_recipe(with_data(source={"encoding": given}), check=False).data.source.encoding == kept


@pytest.mark.parametrize("given, fragment", [
    ("utf-16", "writes ASCII characters with zero bytes, so lines cannot be found byte by byte: re-encode the "
               "files to UTF-8, e.g. iconv -f utf-16 -t utf-8"),
    ("UTF-32-LE", "iconv -f utf-32-le -t utf-8"),
    ("shift_jis", "'shift_jis' uses bytes below 0x80 inside other characters"),
    ("cp932", "inside other characters"), ("gbk", "inside other characters"),
    ("gb18030", "inside other characters"), ("big5", "inside other characters"),
    ("iso2022_jp", "does not read every byte below 0x80 as its ASCII character (some switch character sets)"),
    ("utf-7", "does not read every byte below 0x80 as its ASCII character"),
    ("cp500", "does not read every byte below 0x80 as its ASCII character"),  # EBCDIC: 0xc1 is 'A'
    ("mac-arabic", "decodes bytes of 0x80 or more to a quote or a line break"),  # its 0xa2 is a quote
    ("base64", "'base64' is not a text encoding"),
    ("latn1", "unknown encoding 'latn1' (did you mean 'latin1'?)"),
    ("klingon-8", "unknown encoding 'klingon-8'"),
])
def test_an_encoding_the_record_reader_cannot_split_is_one_line_naming_key_value_and_allowed(given, fragment):
    message = error_of(with_data(source={"encoding": given}))
    assert message.startswith("data.source.encoding: ") and fragment in message and "\n" not in message
    assert "allowed: utf-8 (the default), a single-byte encoding" in message and "euc-jp" in message


@pytest.mark.parametrize("source, fragment", [
    ({"encoding": "euc-jp", "delimiter": "~"}, "delimiter '~' is also what some multi-byte characters of euc_jp "
                                               "decode to"),
    ({"encoding": "euc-jp", "delimiter": "§"}, "a delimiter other than an ASCII character needs utf-8 or a "
                                               "single-byte encoding"),
    ({"encoding": "latin-1", "delimiter": "€"}, "delimiter '€' cannot be written in iso8859-1"),
])
def test_a_delimiter_the_encoding_cannot_write_as_one_findable_byte_is_refused(source, fragment):
    message = error_of(with_data(source=source))
    assert message.startswith("data.source: ") and fragment in message and "\n" not in message


def test_the_resolved_recipe_names_an_encoding_only_when_one_is_set():
    plain = yaml.safe_load(resolved_yaml(parse_recipe(BASE, check=False)))
    assert "encoding" not in plain["data"]["source"]  # earlier recipes resolve as before
    recipe = parse_recipe(with_data(source={"encoding": "Windows-1252", "delimiter": "§"}), check=False)
    resolved = yaml.safe_load(resolved_yaml(recipe))
    assert resolved["data"]["source"]["encoding"] == "cp1252"
    assert parse_recipe(resolved, check=False) == recipe


@pytest.mark.parametrize("task, fragment", [
    ({"type": "regression", "positive": ["x"]}, "tasks.0: 'positive' is for binary tasks; received it on a "
                                                "regression task"),
    ({"positive": []}, "tasks.0.positive: List should have at least 1 item"),
    ({"positive": ["yes"], "na_values": ["yes"]}, "cannot mean both positive and missing; received ['yes']"),
])
def test_label_value_mistakes_are_one_clear_line(task, fragment):
    message = error_of(with_data(task=task))
    assert fragment in message and "\n" not in message


def test_tasks_sharing_a_label_column_must_read_it_alike():
    raw = with_data(task={"positive": ["yes"]})
    raw["tasks"].append({"name": "other", "type": "binary", "label": "is_fraud", "positive": ["no"]})
    assert "tasks 'fraud' and 'other' read label column 'is_fraud' differently" in error_of(raw)
    raw["tasks"][1]["positive"] = ["yes"]
    assert len(parse_recipe(raw, check=False).tasks) == 2


def test_a_split_without_a_key_or_by_file_is_valid():
    assert parse_recipe(with_data(split={"seed": 3}), check=False).data.split.key is None
    recipe = parse_recipe(with_data(split={"by_file": BY_FILE, "seed": 3}), check=False)
    assert recipe.data.split.split_names() == ["train", "validation", "test"]
    assert [rule.fractions() for rule in recipe.data.split.by_file][1] == {"train": 0.0, "validation": 0.5,
                                                                          "test": 0.5}


@pytest.mark.parametrize("split, fragment", [
    ({"by_file": BY_FILE, "train": 0.5}, "data.split: set the fractions either at the top (train, validation, "
                                         "test) or per file in by_file, not both; received by_file and train"),
    ({"by_file": [{"files": "*", "validation": 1.0}]}, "data.split: by_file must send some file to train"),
    ({"by_file": [{"files": "*", "train": 0.7}]}, "data.split.by_file.0: train + validation + test must equal 1; "
                                                  "received 0.7 + 0.0 + 0.0 = 0.7"),
    ({"by_file": []}, "data.split.by_file: List should have at least 1 item"),
    ({"by_file": [{"file": "*", "train": 1.0}]}, "unknown key 'file' (did you mean 'files'?)"),
    ({"by_file": [{"files": "*", "train": 1.5, "test": -0.5}]}, "data.split.by_file.0.train"),
])
def test_by_file_mistakes_name_the_path(split, fragment):
    assert fragment in error_of(with_data(split=split))


def test_resolved_recipe_with_by_file_shows_the_rules_and_reads_back():
    recipe = parse_recipe(with_data(split={"by_file": BY_FILE, "seed": 3}), check=False)
    resolved = yaml.safe_load(resolved_yaml(recipe))
    assert "train" not in resolved["data"]["split"]
    assert resolved["data"]["split"]["by_file"][0] == {"files": "*.data.gz", "train": 1.0, "validation": 0.0,
                                                       "test": 0.0}
    assert parse_recipe(resolved, check=False) == recipe


@pytest.mark.parametrize("name, never_features", [
    ("census_income", {"instance_weight", "education", "marital_stat", "income_50k"}),
    ("bank_marketing", {"duration", "y", "default", "housing", "loan"}),
])
def test_shipped_real_data_recipes_validate_and_leave_out_leaky_columns(name, never_features):
    recipe = load_recipe(f"recipes/{name}.yaml", check=True)
    assert not {f.source_column for f in recipe.data.features} & never_features


def test_census_recipe_reads_the_benchmark_tasks():
    recipe = load_recipe("recipes/census_income.yaml", check=False)
    assert len(recipe.data.source.columns) == 42
    assert [(t.label, t.positive) for t in recipe.tasks] == [("income_50k", ["50000+."]),
                                                              ("marital_stat", ["Never married"])]
    assert recipe.data.split.split_names() == ["train", "validation", "test"]


def test_a_misspelt_override_of_the_new_fields_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="did you mean 'na_values'"):
        load_recipe("recipes/census_income.yaml", ["data.source.na_value=[x]"], check=False)
