import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tf_gru4rec.data import ItemFeatures, read_item_features
from tf_gru4rec.data.item_features import DEFAULT_BUCKETS, FeatureEncoder
from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.reading import DataError, read_sessions

# Eight items; every kind of column, with empty cells (None: a Parquet null, "" in text).
TABLE = pd.DataFrame({
    "ItemId": [10, 11, 12, 13, 14, 15, 16, 17],
    "brand": ["acme", "zeta", None, "acme", "beta", "zeta", " acme ", "beta"],
    "genres": ["drama|comedy", "comedy", "", "horror| drama |drama", "comedy||action", "action",
               "drama", "x"],
    "year": [1990, 2000, 1995, None, 2010, 2005, 1985, 2001],
})
ENCODINGS = {"brand": "categorical", "genres": "multi", "year": "numeric:4"}
# By hand: the sorted vocabularies, and the year's quantile edges (7 values 1985..2010,
# linear quantiles at positions 6 * (.25, .5, .75) = 1.5, 3, 4.5 of the sorted values).
BRANDS = ["acme", "beta", "zeta"]
GENRES = ["action", "comedy", "drama", "horror", "x"]
YEAR_EDGES = (1992.5, 2000.0, 2003.0)


def write(df, path):
    if path.suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return path


def brute_force(table, spec):
    """Per item, the sorted global indices: a plain loop over cells, columns back to back.
    `spec`: (column, kind, sorted vocabulary or bucket edges)."""
    out = []
    for _, row in table.iterrows():
        values, offset = set(), 0
        for column, kind, arg in spec:
            cell = row[column]
            empty = cell is None or (isinstance(cell, float) and np.isnan(cell)) or str(cell).strip() == ""
            if kind == "numeric":
                if not empty:
                    values.add(offset + sum(edge <= float(cell) for edge in arg))
                offset += len(arg) + 1
            else:
                parts = str(cell).split("|") if kind == "multi" else [str(cell)]
                for part in parts:
                    if part.strip() and not empty:
                        values.add(offset + arg.index(part.strip()))
                offset += len(arg)
        out.append(sorted(values))
    return out


def as_lists(features: ItemFeatures):
    return [features.item_values(i).tolist() for i in range(len(features))]


def single_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ----- encodings --------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["tsv", "csv", "parquet"])
def test_each_format_gives_the_brute_force_encoding(tmp_path, ext):
    features = read_item_features(write(TABLE, tmp_path / f"items.{ext}"), encodings=ENCODINGS)
    assert features.ids.tolist() == TABLE["ItemId"].tolist() and features.ids.dtype == np.int64
    assert features.columns == ("brand", "genres", "year")
    assert features.encodings == ENCODINGS
    assert features.vocabularies["brand"] == {v: i for i, v in enumerate(BRANDS)}
    assert features.vocabularies["genres"] == {v: i for i, v in enumerate(GENRES)}
    assert features.encoder.edges == {"year": YEAR_EDGES}
    assert list(features.vocabularies["year"]) == ["<1992.5", "[1992.5, 2000.0)", "[2000.0, 2003.0)",
                                                   ">=2003.0"]
    assert features.column_offsets == {"brand": 0, "genres": 3, "year": 8}
    assert features.n_values == 3 + 5 + 4
    expected = brute_force(TABLE, [("brand", "categorical", BRANDS), ("genres", "multi", GENRES),
                                   ("year", "numeric", YEAR_EDGES)])
    assert as_lists(features) == expected
    # Spelled out for two items: 13 = acme, drama+horror (once each), no year.
    assert expected[3] == [0, 3 + 2, 3 + 3] and expected[4] == [1, 3 + 0, 3 + 1, 8 + 3]
    assert features.values.dtype == np.int32 and features.offsets.dtype == np.int64
    assert features.offsets.tolist() == np.r_[0, np.cumsum([len(v) for v in expected])].tolist()
    assert features.unseen == {"brand": 0, "genres": 0, "year": 0}


def test_tsv_csv_and_parquet_of_one_table_are_identical(tmp_path):
    results = [read_item_features(write(TABLE, tmp_path / f"items.{ext}"))
               for ext in ("tsv", "csv", "parquet")]
    first = results[0]
    assert first.encodings == {"brand": "categorical", "genres": "multi", "year": f"numeric:{DEFAULT_BUCKETS}"}
    for other in results[1:]:
        assert other.ids.tolist() == first.ids.tolist()
        np.testing.assert_array_equal(other.values, first.values)
        np.testing.assert_array_equal(other.offsets, first.offsets)
        assert other.get_config() == first.get_config()


def test_quantile_bucket_edges(tmp_path):
    def edges(values, encoding=None):
        df = pd.DataFrame({"ItemId": range(len(values)), "x": values})
        f = read_item_features(write(df, tmp_path / "n.tsv"), encodings={"x": encoding} if encoding else None)
        return f.encoder.edges["x"], as_lists(f)

    # 0..20, the default 10 buckets: edges at 2, 4, ..., 18; a value on an edge goes up.
    e, rows = edges(list(range(21)))
    assert DEFAULT_BUCKETS == 10 and e == tuple(float(x) for x in range(2, 20, 2))
    assert [r[0] for r in rows] == [min(v // 2, 9) for v in range(21)]
    assert np.bincount([r[0] for r in rows]).tolist() == [2] * 9 + [3]
    # Ties: 1/3 and 2/3 quantiles of [1,1,1,1,2,3] are 1 and 4/3; the edge at the minimum
    # would leave bucket 0 empty, so it is dropped: two buckets.
    e, rows = edges([1, 1, 1, 1, 2, 3], "numeric:3")
    assert e == pytest.approx((4 / 3,)) and rows == [[0]] * 4 + [[1], [1]]
    e, rows = edges([7, 7, 7], "numeric:5")  # a constant column: one bucket
    assert e == () and rows == [[0]] * 3
    e, rows = edges([0.5, 2.5, 1.5, 3.5], "numeric:2")
    assert e == (2.0,) and rows == [[0], [1], [0], [1]]


def test_the_inference_rule_and_explicit_encodings(tmp_path):
    path = write(pd.DataFrame({
        "ItemId": ["a", "b", "c"],
        "num": ["1.5", "", "3"],         # finite numbers (and an empty cell): numeric
        "mixed": ["5", "x", "7"],        # not all numbers: categorical
        "piped": ["p|q", "p", "r"],      # some cell has '|': multi
        "nan": ["1", "NaN", "2"],        # NaN is not a finite number: text
    }), tmp_path / "i.tsv")
    inferred = read_item_features(path)
    assert inferred.encodings == {"num": "numeric:10", "mixed": "categorical", "piped": "multi",
                                  "nan": "categorical"}
    assert list(inferred.vocabularies["piped"]) == ["p", "q", "r"]
    explicit = read_item_features(path, columns=["piped", "num"],
                                  encodings={"piped": "categorical", "num": "NUMERIC"})
    assert explicit.columns == ("piped", "num")
    assert explicit.encodings == {"piped": "categorical", "num": f"numeric:{DEFAULT_BUCKETS}"}
    assert list(explicit.vocabularies["piped"]) == ["p", "p|q", "r"]  # one value, '|' and all
    assert explicit.encoder.edges["num"] == pytest.approx(tuple(1.5 + 0.15 * k for k in range(1, 10)))
    assert as_lists(explicit) == [[1, 3], [0], [2, 3 + 9]]  # num: 1.5 -> bucket 0 of 10, 3 -> 9


def test_empty_cells_are_no_value(tmp_path):
    df = pd.DataFrame({"ItemId": [1, 2, 3], "c": ["u", None, " "], "m": ["", "a| |b", None],
                       "n": [None, 4.0, 2.0], "e": [None, None, None]})
    for ext in ("tsv", "parquet"):
        f = read_item_features(write(df, tmp_path / f"e.{ext}"),
                               encodings={"c": "categorical", "m": "multi", "n": "numeric:2", "e": "categorical"})
        assert {c: list(v) for c, v in f.vocabularies.items()} == {
            "c": ["u"], "m": ["a", "b"], "n": ["<3.0", ">=3.0"], "e": []}
        assert f.encoder.edges["n"] == (3.0,)
        assert as_lists(f) == [[0], [1, 2, 4], [3]]


def test_parquet_list_cells_are_multi_valued(tmp_path):
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"ItemId": [1, 2, 3], "tags": [["b", "a"], [], None]}), path)
    f = read_item_features(path)
    assert f.encodings == {"tags": "multi"} and list(f.vocabularies["tags"]) == ["a", "b"]
    assert as_lists(f) == [[0, 1], [], []]
    message = single_line_error(read_item_features, path, encodings={"tags": "categorical"})
    assert message == (f"{path}: column 'tags' (categorical): 2 cell(s) hold lists, e.g. ['b', 'a']; "
                       "encode the column as multi")


def test_item_ids_are_typed_like_session_ids(tmp_path):
    sessions = tmp_path / "s.tsv"
    sessions.write_text("SessionId\tItemId\tTime\n1\t007\t1\n1\t12\t2\n")
    items = tmp_path / "i.tsv"
    items.write_text("ItemId\tc\n12\tx\n7\ty\n")
    ids = read_sessions(sessions)["ItemId"].to_numpy()
    f = read_item_features(items)
    assert f.ids.dtype == ids.dtype == np.int64 and f.ids.tolist() == [12, 7]
    assert f.align(ItemMap(ids)).features.ids.tolist() == [7, 12]
    text = tmp_path / "t.csv"
    text.write_text("ItemId,c\nabc,x\n12,y\n")  # one id is no integer: all stay strings
    assert read_item_features(text).ids.tolist() == ["abc", "12"]


# ----- new rows, the saved description ----------------------------------------------------
def test_encode_new_rows_with_the_same_vocabularies(tmp_path):
    features = read_item_features(write(TABLE, tmp_path / "items.tsv"), encodings=ENCODINGS)
    new = pd.DataFrame({"ItemId": [99, 98, 97], "brand": ["beta", "nova", None],
                        "genres": ["x|scifi|drama", "noir", ""], "year": [1900.0, 2003.0, np.nan],
                        "ignored": [1, 2, 3]})
    encoded = features.encode(new)
    assert encoded.ids.tolist() == [99, 98, 97] and encoded.n_values == features.n_values
    assert as_lists(encoded) == [[1, 3 + 2, 3 + 4, 8 + 0], [8 + 3], []]
    assert encoded.unseen == {"brand": 1, "genres": 2, "year": 0}  # nova; scifi, noir
    # The description survives JSON and encodes alike.
    config = json.loads(json.dumps(features.get_config()))
    again = FeatureEncoder.from_config(config).encode(new)
    assert as_lists(again) == as_lists(encoded) and again.unseen == encoded.unseen
    assert FeatureEncoder.from_config(config) == features.encoder
    message = single_line_error(features.encode, new.drop(columns=["year"]), source="new.tsv")
    assert message == ("new.tsv: missing column(s) ['year']; the item features need "
                       "['ItemId', 'brand', 'genres', 'year']")
    message = single_line_error(features.encode, new.assign(year=["1990", "soon", "2000"]))
    assert message == "frame: column 'year' (numeric:4): 1 value(s) are not finite numbers, e.g. 'soon'"


def test_reading_with_an_encoder_extends_its_vocabularies_and_keeps_its_edges(tmp_path):
    """A warm start's table: known values keep their numbers, new ones are appended per
    column (sorted), numbers are bucketed at the old edges; `value_index_in` maps old
    global values to the new ones past the grown columns."""
    old = read_item_features(write(TABLE, tmp_path / "items.tsv"), encodings=ENCODINGS)
    new_rows = pd.DataFrame({"ItemId": [10, 99, 98], "brand": ["acme", "nova", "aaa"],
                             "genres": ["drama|noir", "comedy", ""], "year": [1990, 3000, 1000]})
    features = read_item_features(write(new_rows, tmp_path / "new.tsv"), encoder=old.encoder)
    brands, genres = [*BRANDS, "aaa", "nova"], [*GENRES, "noir"]
    assert features.encoder.vocabularies["brand"] == tuple(brands)
    assert features.encoder.vocabularies["genres"] == tuple(genres)
    assert features.encoder.edges == {"year": YEAR_EDGES} and features.unseen == {"brand": 0, "genres": 0, "year": 0}
    spec = [("brand", "categorical", brands), ("genres", "multi", genres), ("year", "numeric", YEAR_EDGES)]
    assert as_lists(features) == brute_force(new_rows, spec)
    old_names = [(c, v) for c in old.columns for v in old.encoder.vocabularies[c]]
    new_names = [(c, v) for c in features.columns for v in features.encoder.vocabularies[c]]
    assert old.encoder.value_index_in(features.encoder).tolist() == [new_names.index(n) for n in old_names]
    assert old.encoder.extension_problem(features.encoder) is None
    assert features.encoder.extension_problem(old.encoder) == "column 'brand' numbers its values otherwise than the model"


# ----- alignment with the model's items ---------------------------------------------------
def test_align_orders_by_item_map_then_cold_start_items(tmp_path):
    features = read_item_features(write(TABLE, tmp_path / "items.tsv"), encodings=ENCODINGS)
    rows = dict(zip(TABLE["ItemId"], as_lists(features)))
    item_map = ItemMap([16, 10, 500, 13, 501])  # 500, 501: clicked, no feature row
    aligned = features.align(item_map)
    cold = [11, 12, 14, 15, 17]  # feature rows never clicked, in file order
    assert aligned.features.ids.tolist() == [16, 10, 500, 13, 501] + cold
    assert aligned.cold_ids.tolist() == cold and aligned.n_known == 5
    assert as_lists(aligned.features) == ([rows[16], rows[10], [], rows[13], []]
                                          + [rows[i] for i in cold])
    assert (aligned.n_missing, aligned.n_cold) == (2, 5) and aligned.missing_ids.tolist() == [500, 501]
    assert aligned.unseen == {"brand": 0, "genres": 0, "year": 0}
    assert aligned.summary() == ("item features: 3 of 5 items have a feature row (2 without: no "
                                 "features); 5 cold-start item(s) with features only")
    assert aligned.features.values.dtype == np.int32 and aligned.features.offsets[-1] == len(aligned.features.values)
    everything = features.align(ItemMap(TABLE["ItemId"].to_numpy()[::-1]))
    assert as_lists(everything.features) == as_lists(features)[::-1] and everything.n_cold == 0
    strings = features.align(ItemMap(["13", "x"]))  # string ids of the sessions still match
    assert as_lists(strings.features)[:2] == [rows[13], []] and strings.n_cold == 7


# ----- bad tables -------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, kwargs, message", [
    ("i.tsv", "id\tc\n1\tx\n", {}, "{path}: no ItemId column; found ['id', 'c']"),
    ("i.tsv", "ItemId\tc\n1\tx\n2\ty\n1\tz\n3\tw\n2\tv\n1\tu\n", {},
     "{path}: 2 ItemId value(s) occur more than once (5 rows), e.g. 1 (3 rows), 2 (2 rows)"),
    ("i.csv", "ItemId,c\na,x\na,y\n", {}, "{path}: 1 ItemId value(s) occur more than once (2 rows), e.g. 'a' (2 rows)"),
    ("i.tsv", "ItemId\tc\n1\tx\n\ty\n", {}, "{path}: 1 row(s) with a missing ItemId"),
    ("i.tsv", "ItemId\tyear\n1\t1990\n2\tNaN\n3\tsoon\n", {"encodings": {"year": "numeric"}},
     "{path}: column 'year' (numeric:10): 2 value(s) are not finite numbers, e.g. 'NaN'"),
    ("i.tsv", "ItemId\tyear\n1\t1990\n2\tinf\n", {"encodings": {"year": "numeric:3"}},
     "{path}: column 'year' (numeric:3): 1 value(s) are not finite numbers, e.g. 'inf'"),
    ("i.tsv", "ItemId\ta\tb\n1\tx\ty\n", {"columns": ["a", "z", "ItemId"]},
     "{path}: unknown column(s) ['z', 'ItemId'] in columns; available: ['a', 'b']"),
    ("i.tsv", "ItemId\ta\tb\n1\tx\ty\n", {"encodings": {"q": "multi"}},
     "{path}: unknown column(s) ['q'] in encodings; available: ['a', 'b']"),
    ("i.tsv", "ItemId\ta\tb\n1\tx\ty\n", {"columns": ["a"], "encodings": {"b": "multi"}},
     "{path}: encodings name column(s) ['b'] that columns does not select (['a'])"),
    ("i.tsv", "ItemId\ta\tb\n1\tx\ty\n", {"columns": []},
     "{path}: columns selects no feature column; available: ['a', 'b']"),
    ("i.tsv", "ItemId\ta\n1\tx\n", {"encodings": {"a": "onehot"}},
     "{path}: column 'a': unknown encoding 'onehot' (expected categorical, multi, numeric or "
     "numeric:N with N a positive integer)"),
    ("i.tsv", "ItemId\ta\n1\t3\n", {"encodings": {"a": "numeric:0"}},
     "{path}: column 'a': unknown encoding 'numeric:0' (expected categorical, multi, numeric or "
     "numeric:N with N a positive integer)"),
    ("i.json", "{}", {}, "{path}: unsupported file extension '.json' (expected .tsv, .csv or .parquet)"),
    ("i.tsv", "", {}, "{path}: the file is empty"),
    ("i.parquet", "", {}, "{path}: the file is empty"),
    ("i.tsv", "ItemId\tc\n", {}, "{path}: the table has no rows"),
    ("i.tsv", "ItemId\n1\n2\n", {}, "{path}: no feature columns, only ItemId"),
    ("i.tsv", "ItemId\tc\n1\tx\n2\ty\tz\n", {},
     "{path}: cannot be read (Error tokenizing data. C error: Expected 2 fields in line 3, saw 3)"),
    ("i.tsv", "ItemId\tc\n1.5\tx\n", {}, "{path}: ItemId has fractional values, e.g. 1.5"),
])
def test_bad_tables_get_one_line_errors(tmp_path, name, content, kwargs, message):
    path = tmp_path / name
    path.write_text(content)
    assert single_line_error(read_item_features, path, **kwargs) == message.format(path=path)


def test_missing_file_and_parquet_nan(tmp_path):
    assert single_line_error(read_item_features, tmp_path / "no.tsv") == f"{tmp_path / 'no.tsv'}: no such file"
    path = tmp_path / "nan.parquet"  # a NaN (not a null) in a float column is not a value
    pq.write_table(pa.table({"ItemId": [1, 2, 3], "x": pa.array([1.0, float("nan"), None])}), path)
    assert single_line_error(read_item_features, path) == (
        f"{path}: column 'x' (numeric:10): 1 value(s) are not finite numbers, e.g. nan")
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"not parquet at all")
    assert single_line_error(read_item_features, garbage).startswith(f"{garbage}: cannot be read (")


# ----- the real tables --------------------------------------------------------------------
@pytest.mark.slow
def test_the_real_item_tables(shared_data):
    beauty, movies = shared_data / "amazon_beauty" / "items.tsv", shared_data / "ml-100k" / "items.tsv"
    if not (beauty.exists() and movies.exists()):
        pytest.skip("no ../shared/data item tables")
    for path, n_items, encodings in [(beauty, 12_101, {"attributes": "multi"}),
                                     (movies, 1_682, {"title": "categorical", "year": "categorical",
                                                      "genres": "multi"})]:
        f = read_item_features(path)
        assert len(f) == n_items and f.encodings == encodings
        assert np.diff(f.offsets).min() >= 1  # every item has a feature value
        assert 0 <= f.values.min() and f.values.max() < f.n_values
    assert len(read_item_features(beauty).vocabularies["attributes"]) == 637
    assert len(f.vocabularies["genres"]) == 19
    # ml-100k's year has 'unkonwn' cells: asked for as numeric, it is refused in one line.
    message = single_line_error(read_item_features, movies, encodings={"year": "numeric"})
    assert message == f"{movies}: column 'year' (numeric:10): 2 value(s) are not finite numbers, e.g. 'unkonwn'"
