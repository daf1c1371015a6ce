"""Tests of the synthetic Babyshop twin: format, statistics, determinism, atomic files, signal.

Item-table statistics are compared with the real ``item_info.csv`` (read from
``../shared/babyshop/`` at test time); per-user statistics with the numbers the
data set's README reports, since the real train/test files are not available.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrs_course.data import schema, synthetic

# README statistics of the real interactions (per user, over all pairs).
REAL_ITEMS_PER_USER = {"mean": 8.94, "std": 6.34, "median": 8, "min": 1, "max": 20}
REAL_GENDERS_PER_USER = 1.73
REAL_BRANDS_PER_USER = 4.69
REAL_GROUPS_PER_USER = 4.57
REAL_TRAIN_SHARE = 667_009 / 785_000
REAL_INFO_USER_SHARE = 24_543 / 88_000
REAL_AOV_MEAN, REAL_AOV_MEDIAN = 703.6, 542.7
REAL_MARKDOWN_MEAN, REAL_MARKDOWN_MIN = -0.33, -0.912

# Tolerances. They are wide enough for any seed (the twin is a model, not a copy)
# yet tight enough that a broken generator fails: a uniform brand distribution or
# a lost gender would miss by far more.
GENDER_SHARE_TOLERANCE = 0.04  # absolute, per gender share of the catalogue
TOP_BRANDS_SHARE_TOLERANCE = 0.06  # absolute, share of items in the 10 / 100 biggest brands
AGE_MISSING_TOLERANCE = 0.01  # absolute, share of items without min/max age
ITEMS_PER_USER_MEAN_TOLERANCE = 0.4
ITEMS_PER_USER_STD_TOLERANCE = 0.5
ITEMS_PER_USER_MEDIAN_TOLERANCE = 1
DISTINCT_PER_USER_TOLERANCE = 0.2  # relative, for genders, brands and groups per user
TRAIN_SHARE_TOLERANCE = 0.01
INFO_USER_SHARE_TOLERANCE = 0.005
AOV_RELATIVE_TOLERANCE = 0.1
MARKDOWN_MEAN_TOLERANCE = 0.03
# Users at the 20-item cap touch at least this many times more brands per item
# than typical users (8-10 items); 1.44 on the default twin, 0.82 without the
# heavier users' extra style picks.
HEAVY_OVER_TYPICAL_BRANDS_PER_ITEM_MIN = 1.2
# The content-only scorer must beat the popularity baseline by this factor on the
# default twin (the original data: 0.069 vs 0.041, a factor of 1.7).
CONTENT_OVER_POPULARITY_MIN_RATIO = 1.5

TOP_USERS = 2000
TOP_K = 100


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_hashes(folder: Path) -> dict[str, str]:
    return {path.name: _sha256(path) for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return synthetic.write_twin(tmp_path_factory.mktemp("tiny"), "tiny", seed=0)


@pytest.fixture(scope="module")
def default_twin() -> dict[str, pd.DataFrame]:
    return synthetic.generate_twin("default", seed=0)


@pytest.fixture(scope="module")
def real_items(babyshop_dir: Path) -> pd.DataFrame:
    path = babyshop_dir / schema.FILE_NAMES["items"]
    if not path.is_file():
        pytest.skip(f"the real item_info.csv is not at {path}")
    return schema.read_table(path, "items")


# --- format ------------------------------------------------------------------


def test_files_pass_the_schema_and_round_trip(tiny_folder):
    generated = synthetic.generate_twin("tiny", seed=0)
    for table, file_name in schema.FILE_NAMES.items():
        read_back = schema.read_table(tiny_folder / file_name, table)
        assert list(read_back.columns) == schema.SCHEMAS[table].column_names
        pd.testing.assert_frame_equal(read_back, generated[table], check_exact=True)


def test_ids_are_unique_int64_strings_and_tables_are_consistent(default_twin):
    items, users = default_twin["items"], default_twin["users"]
    pairs = pd.concat([default_twin["train"], default_twin["test"]], ignore_index=True)
    assert items["item_no"].is_unique
    assert not pairs.duplicated(["user_no", "item_no"]).any()
    assert set(pairs["item_no"]) <= set(items["item_no"])
    assert set(users["user_no"]) <= set(pairs["user_no"])
    as_numbers = items["item_no"].map(int)
    # Random over the whole int64 range: both signs, and most ids have 18-19 digits.
    assert (as_numbers < 0).mean() == pytest.approx(0.5, abs=0.05)
    assert items["item_no"].str.lstrip("-").str.len().median() >= 18
    # Interaction rows carry their item's metadata.
    joined = pairs.merge(items, on="item_no", suffixes=("", "_item"))
    for column in ("gender_description", "brand", "product_group"):
        assert (joined[column] == joined[f"{column}_item"]).all()


def test_sizes_have_the_promised_shape():
    full = synthetic.SIZES["full"]
    assert (full.n_users, full.n_items, full.n_info_users) == (88_000, 61_704, 24_543)
    for size in synthetic.SIZES.values():
        assert size.n_info_users / size.n_users == pytest.approx(REAL_INFO_USER_SHARE, abs=0.005)


# --- statistics ----------------------------------------------------------------


def test_item_table_matches_the_real_catalogue(default_twin, real_items):
    items = default_twin["items"]
    twin_genders = items["gender_description"].value_counts(normalize=True)
    real_genders = real_items["gender_description"].value_counts(normalize=True)
    for gender in schema.GENDERS:
        assert twin_genders[gender] == pytest.approx(real_genders[gender], abs=GENDER_SHARE_TOLERANCE)

    assert items["brand"].nunique() == real_items["brand"].nunique()
    assert items["product_group"].nunique() == real_items["product_group"].nunique()
    twin_brands = items["brand"].value_counts(normalize=True).to_numpy()
    real_brands = real_items["brand"].value_counts(normalize=True).to_numpy()
    for top in (10, 100):
        assert twin_brands[:top].sum() == pytest.approx(real_brands[:top].sum(), abs=TOP_BRANDS_SHARE_TOLERANCE)
    assert items["min_age"].isna().mean() == pytest.approx(
        real_items["min_age"].isna().mean(), abs=AGE_MISSING_TOLERANCE
    )
    assert (items["min_age"].isna() == items["max_age"].isna()).all()
    assert (items["min_age"].dropna() <= items["max_age"].dropna()).all()


def test_per_user_behaviour_matches_the_readme(default_twin):
    pairs = pd.concat([default_twin["train"], default_twin["test"]], ignore_index=True)
    per_user = pairs.groupby("user_no").agg(
        items=("item_no", "size"),
        genders=("gender_description", "nunique"),
        brands=("brand", "nunique"),
        groups=("product_group", "nunique"),
    )
    counts = per_user["items"]
    assert counts.min() == REAL_ITEMS_PER_USER["min"] and counts.max() == REAL_ITEMS_PER_USER["max"]
    assert counts.mean() == pytest.approx(REAL_ITEMS_PER_USER["mean"], abs=ITEMS_PER_USER_MEAN_TOLERANCE)
    assert counts.std() == pytest.approx(REAL_ITEMS_PER_USER["std"], abs=ITEMS_PER_USER_STD_TOLERANCE)
    assert abs(counts.median() - REAL_ITEMS_PER_USER["median"]) <= ITEMS_PER_USER_MEDIAN_TOLERANCE
    for column, real in (
        ("genders", REAL_GENDERS_PER_USER),
        ("brands", REAL_BRANDS_PER_USER),
        ("groups", REAL_GROUPS_PER_USER),
    ):
        assert per_user[column].mean() == pytest.approx(real, rel=DISTINCT_PER_USER_TOLERANCE), column

    train_share = len(default_twin["train"]) / len(pairs)
    assert train_share == pytest.approx(REAL_TRAIN_SHARE, abs=TRAIN_SHARE_TOLERANCE)


def test_heavy_users_roam_more_brands_per_item_than_typical_ones(default_twin):
    # Not a statistic of the real data but the story the calibration rests on:
    # the users at the 20-item cap (the lessons' top 2,000) make more of their
    # picks by latent style across brands, while typical users keep to their
    # favourite brands. Without it (one off-preference share for everyone) the
    # heavy users touch fewer brands per item than the typical ones.
    pairs = pd.concat([default_twin["train"], default_twin["test"]], ignore_index=True)
    per_user = pairs.groupby("user_no").agg(items=("item_no", "size"), brands=("brand", "nunique"))
    brands_per_item = per_user["brands"] / per_user["items"]
    heavy = brands_per_item[per_user["items"] == REAL_ITEMS_PER_USER["max"]].mean()
    typical = brands_per_item[per_user["items"].between(8, 10)].mean()
    assert heavy > HEAVY_OVER_TYPICAL_BRANDS_PER_ITEM_MIN * typical, (heavy, typical)


def test_months_show_trend_and_seasons(default_twin):
    pairs = pd.concat([default_twin["train"], default_twin["test"]], ignore_index=True)
    months = pairs["first_interaction_month"]
    assert months.between(1, 11).all()
    monthly = months.value_counts(normalize=True).sort_index()
    assert monthly[11] > 2 * monthly[1]  # activity grows towards the end of the year
    swimwear = pairs.loc[pairs["product_group"] == "swimwear and coverups", "first_interaction_month"]
    coats = pairs.loc[pairs["product_group"] == "coats and jackets", "first_interaction_month"]
    summer = [6, 7, 8]
    assert swimwear.isin(summer).mean() > 2 * coats.isin(summer).mean()


def test_user_info_matches_the_real_one(default_twin):
    users = default_twin["users"]
    n_interacting = pd.concat([default_twin["train"], default_twin["test"]])["user_no"].nunique()
    assert len(users) / n_interacting == pytest.approx(REAL_INFO_USER_SHARE, abs=INFO_USER_SHARE_TOLERANCE)
    assert (users["country"] == "sweden").all()
    assert users["aov"].mean() == pytest.approx(REAL_AOV_MEAN, rel=AOV_RELATIVE_TOLERANCE)
    assert users["aov"].median() == pytest.approx(REAL_AOV_MEDIAN, rel=AOV_RELATIVE_TOLERANCE)
    assert users["avg_markdown"].between(REAL_MARKDOWN_MIN, 0.0).all()
    assert users["avg_markdown"].mean() == pytest.approx(REAL_MARKDOWN_MEAN, abs=MARKDOWN_MEAN_TOLERANCE)


# --- determinism and files ------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path, tiny_folder):
    again = synthetic.write_twin(tmp_path, "tiny", seed=0)
    assert _folder_hashes(again) == _folder_hashes(tiny_folder)


def test_different_seeds_give_different_data(tmp_path, tiny_folder):
    other = synthetic.write_twin(tmp_path, "tiny", seed=1)
    first, second = _folder_hashes(tiny_folder), _folder_hashes(other)
    for table in synthetic.TABLES:
        assert first[schema.FILE_NAMES[table]] != second[schema.FILE_NAMES[table]], table


def test_manifest_describes_the_files(tiny_folder):
    manifest = json.loads((tiny_folder / synthetic.MANIFEST_NAME).read_text())
    assert manifest["generator_version"] == synthetic.GENERATOR_VERSION
    assert (manifest["size"], manifest["seed"]) == ("tiny", 0)
    for table, file_name in schema.FILE_NAMES.items():
        entry = manifest["files"][file_name]
        assert entry["sha256"] == _sha256(tiny_folder / file_name)
        assert entry["rows"] == len(schema.read_table(tiny_folder / file_name, table))
    assert synthetic.twin_dir(tiny_folder.parents[1], "tiny", 0) == tiny_folder


class InjectedFailure(RuntimeError):
    pass


def _fail_on_third_file(monkeypatch):
    """Make write_twin die after writing two of the four files, as a full disk would."""
    real_write = synthetic._write_table
    calls = []

    def write_then_fail(frame, path):
        calls.append(path)
        if len(calls) == 3:
            raise InjectedFailure(f"injected failure while writing {path.name}")
        real_write(frame, path)

    monkeypatch.setattr(synthetic, "_write_table", write_then_fail)


def test_a_failed_write_leaves_no_partial_folder(tmp_path, monkeypatch):
    _fail_on_third_file(monkeypatch)
    with pytest.raises(InjectedFailure):
        synthetic.write_twin(tmp_path, "tiny", seed=0)
    target = synthetic.twin_dir(tmp_path, "tiny", 0)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary folders left behind either


def test_a_failed_rebuild_keeps_the_previous_twin(tmp_path, monkeypatch):
    folder = synthetic.write_twin(tmp_path, "tiny", seed=0)
    before = _folder_hashes(folder)
    _fail_on_third_file(monkeypatch)
    with pytest.raises(InjectedFailure):
        synthetic.write_twin(tmp_path, "tiny", seed=0)
    assert _folder_hashes(folder) == before
    assert [path.name for path in folder.parent.iterdir()] == [folder.name]


def test_ensure_twin_builds_keeps_and_rebuilds(tmp_path):
    folder = synthetic.ensure_twin(tmp_path, "tiny", seed=0)
    original = _folder_hashes(folder)
    train = folder / schema.FILE_NAMES["train"]
    built_at = train.stat().st_mtime_ns

    # A valid twin is reused as it is.
    assert synthetic.ensure_twin(tmp_path, "tiny", seed=0) == folder
    assert train.stat().st_mtime_ns == built_at

    # A tampered file is detected and the twin rebuilt.
    train.write_bytes(train.read_bytes().replace(b"\n", b"\r\n", 1))
    assert not synthetic.twin_is_valid(folder, "tiny", 0)
    synthetic.ensure_twin(tmp_path, "tiny", seed=0)
    assert _folder_hashes(folder) == original

    # So is a missing file, and a twin from another generator version.
    (folder / schema.FILE_NAMES["users"]).unlink()
    synthetic.ensure_twin(tmp_path, "tiny", seed=0)
    assert _folder_hashes(folder) == original
    manifest_path = folder / synthetic.MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["generator_version"] = "0.0.0-old"
    manifest_path.write_text(json.dumps(manifest))
    synthetic.ensure_twin(tmp_path, "tiny", seed=0)
    assert _folder_hashes(folder) == original


# --- the course's signal, without training a model ----------------------------------


def _top_users(train: pd.DataFrame, test: pd.DataFrame):
    counts = train.groupby("user_no").size().rename("count").reset_index()
    counts = counts.sort_values(["count", "user_no"], ascending=[False, True], kind="stable")
    top = set(counts["user_no"].iloc[:TOP_USERS])
    return train[train["user_no"].isin(top)], test[test["user_no"].isin(top)]


def _one_hot(frame: pd.DataFrame, vocabularies: dict[str, list[str]]) -> np.ndarray:
    blocks = []
    for column, vocabulary in vocabularies.items():
        codes = pd.Categorical(frame[column], categories=vocabulary).codes
        blocks.append(np.eye(len(vocabulary), dtype=np.float32)[codes])
    return np.concatenate(blocks, axis=1)


def content_top_k_accuracy(train: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame) -> float:
    """The course's content-based scorer: one-hot gender, brand and group; user = mean of items.

    A test row is a hit when its item ranks in the top k over all catalogue items;
    ties go to the item earlier in the catalogue, as ``tf.math.top_k`` breaks them.
    """
    top_brands = set(train["brand"].value_counts().index[:100])
    top_groups = set(train["product_group"].value_counts().index[:50])

    def bucket(frame):
        return frame.assign(
            brand=frame["brand"].where(frame["brand"].isin(top_brands), "other"),
            product_group=frame["product_group"].where(frame["product_group"].isin(top_groups), "other"),
        )

    vocabularies = {
        "gender_description": list(schema.GENDERS),
        "brand": sorted(top_brands) + ["other"],
        "product_group": sorted(top_groups) + ["other"],
    }
    item_vectors = _one_hot(bucket(items), vocabularies)
    user_codes, users = pd.factorize(train["user_no"])
    user_vectors = np.zeros((len(users), item_vectors.shape[1]), dtype=np.float32)
    np.add.at(user_vectors, user_codes, _one_hot(bucket(train), vocabularies))
    user_vectors /= np.bincount(user_codes)[:, None]

    test_user = pd.Index(users).get_indexer(test["user_no"])
    test_item = pd.Index(items["item_no"]).get_indexer(test["item_no"])
    assert (test_user >= 0).all() and (test_item >= 0).all()
    positions = np.arange(len(items))
    hits = 0
    for start in range(0, len(test), 256):
        rows_user, rows_item = test_user[start : start + 256], test_item[start : start + 256]
        scores = user_vectors[rows_user] @ item_vectors.T
        true_scores = scores[np.arange(len(rows_user)), rows_item][:, None]
        ahead = (scores > true_scores) | ((scores == true_scores) & (positions < rows_item[:, None]))
        hits += int((ahead.sum(axis=1) < TOP_K).sum())
    return hits / len(test)


def popularity_top_k_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> float:
    most_popular = train["item_no"].value_counts().index[:TOP_K]
    return float(test["item_no"].isin(most_popular).mean())


def test_content_scorer_beats_popularity_on_the_top_users(default_twin):
    train, test = _top_users(default_twin["train"], default_twin["test"])
    popularity = popularity_top_k_accuracy(train, test)
    content = content_top_k_accuracy(train, test, default_twin["items"])
    assert popularity > 0.01, "the popularity baseline should find something"
    assert content > CONTENT_OVER_POPULARITY_MIN_RATIO * popularity, (content, popularity)
