"""A seeded synthetic "twin" of the four Babyshop tables, for offline work and tests.

The real ``train.csv`` and ``test.csv`` cannot be fetched on machines without a
route to GitHub, so the course can run on a twin instead: tables with the same
columns, id format and headline statistics (see ``shared/babyshop/README.md``),
generated from a small, explicit story of how people shop. The twin is built
with vectorised NumPy (no Python loop per user or item), so it is fast, and it
is deterministic: the same size and seed always give the same bytes on disk.

The generative story
--------------------
* **Catalogue.** Brands and product groups have long-tailed sizes (a log-normal
  with its top squeezed, fitted to the real ``item_info.csv``). Large brands
  sell to every gender; small brands tend to sell to one. Each brand covers a
  few product groups, drawn in proportion to how big the groups are overall.
  Every item gets a popularity weight from a *moderate* log-normal.
* **Shoppers.** Each user shops for a boy, a girl, or both (and a few keep to
  boys' items, girls' items or unisex items only), keeps one to six favourite
  brands (better-known, bigger brands more often) and leans towards three
  product groups those brands sell. How many items a user touches (1 to 20,
  mean about 8.9) comes from a capped negative binomial.
* **Styles.** Every item also has a latent *style*, one of about 150 (about 400
  items each), drawn independently of its brand, product group and gender: it
  stands for what the item table does not record (a print, a cut, a price
  level, the things bought together). Each user likes two styles.
* **Picks.** Most picks are an item of a favourite brand that fits the child
  (the child's gender or unisex), in a favourite product group when the brand
  has one, chosen in proportion to item popularity. The others are
  *off-preference* picks that follow the user's taste instead of their brands:
  an item of one of the user's two styles, of any brand, still fitting the
  child, drawn by a sharpened popularity so that it lands on the style's
  popular items. Nothing in the item table tells an item's style, so the
  content-based scorer cannot see this part; the ID model can learn it from
  which items the same users buy, and the hybrid through its item-ID part.
* **Who explores.** Users who buy more explore more: a typical user (about
  nine items) makes one pick in ten off-preference, and the share grows with
  the cube of how many items the user wants, up to one in two at the 20-item
  cap. The lessons train on the 2,000 heaviest users, who roam across brands
  and styles; the many light users, who mostly keep to their favourite brands,
  set most of the per-user averages (distinct brands and product groups per
  user), which stay in the real range.
* **Time.** ``first_interaction_month`` (1 to 11) combines a store-wide trend
  (activity grows towards the end of the year), product-group seasonality
  (swimwear in summer, coats and baselayers in winter) and the user's own
  shopping season.
* **Split.** The distinct (user, item) pairs are split at random, 85% train and
  15% test, as the original data were.

Calibration
-----------
The balance matters for teaching: a heavier popularity tail would let the
"most popular items" baseline beat every model, and a flatter one would leave
the ID-embedding model nothing to learn. The constants below were searched
with :mod:`tfrs_course.data.calibration`, which measures the twin the way the
original notebook measured the real files (top 2,000 users; ``FactorizedTopK``
over the train items for the ID and hybrid models, an index over the catalogue
for content-based), so that on the default twin each approach's test top-100
lies within a factor of 1.5 of the real one, the ID model's train top-100 is at
least five times its test figure, and popularity < ID < content-based < hybrid,
for three twin seeds and three model seeds. Since version 3.0.0 (latent
styles, and heavy users who explore more) the twin meets all of these in all
nine runs; version 2.0.0, without styles, scored content-based at 1.6-1.9 and
the hybrid at 2.0-2.3 times the real numbers, because the only structure the ID
model could learn there was the brand and group structure content-based sees
too. The two "lists" columns score the same models by the course's own protocol
(the lists a user would see; the hybrid's drawn from the whole catalogue)::

    | twin seed | model seed | popularity | ID | content-based | hybrid | ID train | ID, lists | hybrid, lists | outside the bounds |
    |---|---|---|---|---|---|---|---|---|---|
    | 0 | 42 | 0.034 | 0.050 | 0.065 | 0.158 | 0.859 | 0.051 | 0.102 | none |
    | 0 | 43 | 0.034 | 0.054 | 0.065 | 0.154 | 0.857 | 0.055 | 0.107 | none |
    | 0 | 44 | 0.034 | 0.053 | 0.065 | 0.153 | 0.853 | 0.053 | 0.104 | none |
    | 1 | 42 | 0.033 | 0.052 | 0.075 | 0.162 | 0.855 | 0.052 | 0.115 | none |
    | 1 | 43 | 0.033 | 0.058 | 0.075 | 0.166 | 0.857 | 0.058 | 0.115 | none |
    | 1 | 44 | 0.033 | 0.052 | 0.075 | 0.158 | 0.859 | 0.052 | 0.108 | none |
    | 2 | 42 | 0.039 | 0.052 | 0.073 | 0.155 | 0.855 | 0.052 | 0.111 | none |
    | 2 | 43 | 0.039 | 0.049 | 0.073 | 0.157 | 0.858 | 0.050 | 0.110 | none |
    | 2 | 44 | 0.039 | 0.058 | 0.073 | 0.151 | 0.858 | 0.058 | 0.105 | none |
    | real data | | 0.041 | 0.051 | 0.069 | 0.125 | 0.851 | | | |

The per-user statistics stay in the real range (seed 0: 9.1 items, 1.66
genders, 5.47 brands and 5.27 product groups per user, against 8.94, 1.73, 4.69
and 4.57; the brands and groups are at the top of the tested range, so a change
that makes users roam more will fail ``tests/test_synthetic.py``).

Sizes
-----
``"full"`` approaches the real data (about 88,000 users, 61,704 items, 785,000
pairs). ``"default"`` keeps the whole catalogue but about a quarter of the
users: the lessons train on the top 2,000 users only, and their behaviour
(about 20 items each, a catalogue of 61,704 items to retrieve from) is what
sets how hard retrieval is, so it must match the full twin; the other users
only cost build and load time. 24,000 users still leave more than 2,000 users
at the 20-item cap, as in the real data. ``"tiny"`` is for unit tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfrs_course.data.schema import FILE_NAMES

# Bump whenever a change alters the generated bytes, so that cached twins rebuild.
GENERATOR_VERSION = "3.0.0"

MANIFEST_NAME = "manifest.json"
TABLES = ("train", "test", "items", "users")


@dataclass(frozen=True)
class TwinSize:
    """How big a twin is.

    Args:
        n_users: users with at least one interaction (rows of train/test come from them).
        n_items: items in the catalogue (``item_info.csv``).
        n_info_users: users described in ``user_info.csv`` (a subset of ``n_users``).
        n_brands: distinct brands in the catalogue.
        n_product_groups: distinct product groups in the catalogue.
    """

    n_users: int
    n_items: int
    n_info_users: int
    n_brands: int
    n_product_groups: int


# The real data describe 24,543 of about 88,000 interacting users in user_info.csv.
_INFO_USER_SHARE = 24_543 / 88_000

SIZES: dict[str, TwinSize] = {
    "tiny": TwinSize(
        n_users=800,
        n_items=3_000,
        n_info_users=round(800 * _INFO_USER_SHARE),
        n_brands=80,
        n_product_groups=40,
    ),
    "default": TwinSize(
        n_users=24_000,
        n_items=61_704,
        n_info_users=round(24_000 * _INFO_USER_SHARE),
        n_brands=644,
        n_product_groups=104,
    ),
    "full": TwinSize(
        n_users=88_000,
        n_items=61_704,
        n_info_users=24_543,
        n_brands=644,
        n_product_groups=104,
    ),
}

# ---------------------------------------------------------------------------
# Names. Brands and product groups named in the data set's README and in the
# original notebook, most frequent first where the README says so; the rest of
# the long tail gets neutral numbered names.
# ---------------------------------------------------------------------------
_KNOWN_BRANDS = (
    "molo", "jacadi", "reima", "kuling", "mini rodini", "adidas", "ikks",
    "tartine et chocolat", "moschino kid-teen", "småfolk", "billieblush",
    "champion", "timberland", "moncler", "kavat", "mainio", "done by deer",
    "tommee tippee", "by nils", "fub", "hype", "le toy van", "stoy", "axkid",
    "pom dapi", "little luwi", "buddy & hope", "barts", "beau loves",
    "a happy brand", "a monday in copenhagen", "1+ in the family",
    "emma och malena maternity",
)  # fmt: skip
_KNOWN_GROUPS = (
    "tops", "jumpers and knitwear", "bottoms", "coats and jackets", "dresses",
    "all in ones", "headwear", "underwear", "trainers", "boots",
    "swimwear and coverups", "clothing sets", "sandals", "bags", "coveralls",
    "textile", "tableware", "baby feeding", "fleeces and midlayers", "shoes",
    "role play", "baselayers", "car seat accessories", "strollers",
    "stroller parts and customisati", "bicycles and other vehicles",
    "water toys", "vehicles", "maternity tops",
)  # fmt: skip
# Seasonal product groups: the month their interest peaks and how strongly.
_SUMMER_GROUPS = ("swimwear and coverups", "sandals", "water toys")
_WINTER_GROUPS = ("coats and jackets", "baselayers", "coveralls", "boots", "fleeces and midlayers")
# Groups that are not clothes rarely carry an age range in the real catalogue.
_AGELESS_GROUPS = (
    "bags", "textile", "tableware", "baby feeding", "car seat accessories", "strollers",
    "stroller parts and customisati", "bicycles and other vehicles", "water toys", "vehicles",
)  # fmt: skip

# Colours with rough weights (the real catalogue has 31, most of them rare).
_COLOURS = {
    "blue": 9.6, "pink": 8.6, "white": 6.8, "black": 6.4, "navy": 4.5, "grey": 4.4,
    "green": 3.9, "red": 3.2, "brown": 3.0, "beige": 2.7, "yellow": 2.4, "cream": 2.1,
    "purple": 1.4, "orange": 1.0, "multi color": 0.7, "silver": 0.4, "gold": 0.3,
    "unknown": 0.3,
}  # fmt: skip
# Age bounds in years as the real catalogue writes them (0.125 is about 6 weeks).
_MIN_AGES = {
    1.0: 11.0, 0.125: 8.8, 2.0: 7.1, 3.0: 6.4, 0.875: 4.3, 0.375: 3.8, 0.625: 2.2,
    4.0: 1.8, 5.0: 1.6, 7.0: 1.3, 6.0: 0.5, 8.0: 0.4,
}  # fmt: skip
_MAX_AGES = {
    14.0: 14.4, 10.0: 6.4, 12.0: 4.7, 2.0: 4.7, 3.0: 3.7, 8.0: 3.3, 6.0: 2.5, 4.0: 2.3,
    11.0: 1.9, 7.0: 1.2, 5.0: 1.2, 9.0: 1.1, 0.875: 1.1, 0.625: 0.4,
}  # fmt: skip

# ---------------------------------------------------------------------------
# Parameters of the story, fitted by hand so that the statistics and the
# model ordering described in the module docstring hold.
# ---------------------------------------------------------------------------
GENDERS_IN_ORDER = ("boys", "unisex", "girls")  # unisex in the middle: see _fitting_block
_GENDER_SHARES = np.array([0.19, 0.465, 0.345])  # boys, unisex, girls share of items
_BRAND_SIZE_SIGMA = 1.6  # spread of log brand size
_GROUP_SIZE_SIGMA = 2.0  # spread of log product-group size
_SIZE_Z_KNEE = 2.2  # above this z-score sizes grow slowly: the real top brands are not huge
_BRAND_GENDER_CONCENTRATION = (0.05, 100.0)  # Dirichlet concentration: a + brand size / b
_BRAND_GROUP_SPARSITY = (
    0.01,
    2000.0,
)  # gamma shape a + brand size / b: small brands cover few groups
_ITEM_POPULARITY_SIGMA = 1.0  # moderate: a heavier tail lets the popularity baseline win
_AGE_MISSING_SHARE = 0.195

_ITEMS_PER_USER_CAP = 20
_ITEMS_PER_USER_SHAPE = 1.15  # negative binomial: mean 8.9, std 6.3, median 8 after capping
_ITEMS_PER_USER_MEAN = 9.1
_FAVOURITE_BRAND_COUNTS = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.25])  # P(1, ..., 6 favourites)
_FAVOURITE_BRAND_RANK_WEIGHTS = np.array([0.22, 0.2, 0.17, 0.15, 0.13, 0.13])
_FAVOURITE_GROUPS = 3  # product groups each user leans towards
_GROUP_CANDIDATES = 8  # picks drawn per slot; the first in a favourite group wins
# Shares of shoppers for: a boy, a girl, two children, boys' items only, unisex
# items only, girls' items only (the single-gender kinds keep the mean number of
# genders per user near the real 1.73).
_SHOPPER_KINDS = np.array([0.3, 0.4, 0.12, 0.05, 0.08, 0.05])
# Favourite brands are chosen in proportion to size ** this: well-known brands
# are big, so a favourite brand's items spread over many (brand, group) cells,
# which the content-based scorer ranks as ties.
_BRAND_APPEAL_POWER = 0.6
# Off-preference picks are drawn from the user's latent styles (see the module
# docstring). Their share grows with how many items a user wants, as
# (wanted / mean) ** _EXPLORE_POWER, from _OFF_PREFERENCE_SHARE for a typical user
# to at most _OFF_PREFERENCE_MAX: the per-user statistics are set mostly by the
# many light users, the models' accuracies only by the heavy ones (the lessons
# keep the top 2,000). Calibrated: with a lower cap content-based and the hybrid
# score above their bounds; with a higher one they fall below the ID model.
_OFF_PREFERENCE_SHARE = 0.1
_OFF_PREFERENCE_MAX = 0.5
_EXPLORE_POWER = 3.0
_OFF_PREFERENCE_SHARPNESS = 1.75  # power on popularity within a style: the ID model's signal
# Latent styles: about n_items / _ITEMS_PER_STYLE of them, independent of brand,
# product group and gender. Bigger styles make the popularity baseline stronger,
# smaller ones the ID model.
_ITEMS_PER_STYLE = 400
_FAVOURITE_STYLES = 2  # latent styles each user leans towards
_TEST_SHARE = 0.15
_MONTHS = 11  # the events run from January to November 2021


def generate_twin(size: str = "default", seed: int = 0) -> dict[str, pd.DataFrame]:
    """Generate the four tables of a synthetic Babyshop twin, in memory.

    Args:
        size: a key of :data:`SIZES`.
        seed: the random seed; the same size and seed always give the same tables.

    Returns:
        A dict with keys ``"train"``, ``"test"``, ``"items"`` and ``"users"``,
        each a DataFrame with exactly the columns and dtypes that
        :func:`tfrs_course.data.schema.read_table` returns (ids as ``str``).

    Raises:
        KeyError: ``size`` is not a key of :data:`SIZES`.
    """
    if size not in SIZES:
        raise KeyError(f"unknown twin size {size!r}; choose one of {sorted(SIZES)}")
    twin_size = SIZES[size]
    # One child generator per part, so a change in one part leaves the others' draws alone.
    catalogue_rng, shopper_rng, user_rng, style_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4)
    )
    catalogue = _make_catalogue(twin_size, catalogue_rng)
    # Latent styles, independent of brand, group and gender (their own generator,
    # so the rest of the catalogue is drawn as it was before styles existed).
    n_styles = max(1, round(twin_size.n_items / _ITEMS_PER_STYLE))
    catalogue["style"] = style_rng.integers(n_styles, size=twin_size.n_items)
    pairs, user_ids = _make_interactions(twin_size, catalogue, shopper_rng)
    train, test = _split_pairs(pairs, user_ids, catalogue, shopper_rng)
    users = _make_user_info(twin_size, user_ids, pairs, user_rng)
    return {"train": train, "test": test, "items": catalogue["table"], "users": users}


# ---------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------


def _unique_ids(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct random int64 ids, as decimal strings (object array)."""
    # Collisions are astronomically rare, but a few spares make uniqueness certain.
    draws = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=count + 16,
                         dtype=np.int64, endpoint=True)  # fmt: skip
    ids = pd.unique(draws)[:count]
    if len(ids) < count:
        raise RuntimeError("could not draw enough distinct ids")  # never happens in practice
    return ids.astype(str).astype(object)


def _long_tail_sizes(count: int, total: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` into ``count`` long-tailed positive sizes, largest first."""
    z = np.sort(rng.standard_normal(count))[::-1]
    # A plain log-normal makes the top few far too big compared with the real data.
    z = np.where(z > _SIZE_Z_KNEE, _SIZE_Z_KNEE + 0.3 * (z - _SIZE_Z_KNEE), z)
    weights = np.exp(sigma * z)
    sizes = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(np.int64)
    # Hand out the rounding remainder (or take back the excess) from the largest.
    difference = total - sizes.sum()
    sizes[0] += difference
    if sizes[0] < 1:
        raise ValueError(f"cannot split {total} into {count} positive sizes")
    return np.sort(sizes)[::-1]


def _names(known: tuple[str, ...], count: int, prefix: str) -> np.ndarray:
    numbered = [f"{prefix} {number:03d}" for number in range(len(known) + 1, count + 1)]
    return np.array((list(known) + numbered)[:count], dtype=object)


def _sample_rows(cumulative: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each entry of ``rows``, draw a column of ``cumulative[row]`` (a row-wise CDF)."""
    uniform = rng.random(len(rows)) * cumulative[rows, -1]
    return (cumulative[rows] <= uniform[:, None]).sum(axis=1)


def _weighted_choice(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    cumulative = np.cumsum(weights)
    return np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")


def _make_catalogue(twin_size: TwinSize, rng: np.random.Generator) -> dict:
    """Build the item table plus the arrays the shopper model needs."""
    n_items, n_brands, n_groups = twin_size.n_items, twin_size.n_brands, twin_size.n_product_groups
    brand_names = _names(_KNOWN_BRANDS, n_brands, "brand")
    group_names = _names(_KNOWN_GROUPS, n_groups, "product group")

    brand_sizes = _long_tail_sizes(n_brands, n_items, _BRAND_SIZE_SIGMA, rng)
    group_sizes = _long_tail_sizes(n_groups, n_items, _GROUP_SIZE_SIGMA, rng).astype(float)
    item_brand = np.repeat(np.arange(n_brands), brand_sizes)

    # Gender mix per brand: a Dirichlet whose concentration grows with brand
    # size, so that big brands dress everyone and small ones one gender.
    concentration = _BRAND_GENDER_CONCENTRATION[0] + brand_sizes / _BRAND_GENDER_CONCENTRATION[1]
    brand_gender = rng.gamma(_GENDER_SHARES * concentration[:, None]) + 1e-12
    item_gender = _sample_rows(np.cumsum(brand_gender, axis=1), item_brand, rng)

    # Each brand covers a few groups, big groups more often; sparse gamma weights
    # leave most of a brand's items in its two or three main groups.
    brand_group = (
        group_sizes[None, :]
        * rng.gamma(
            _BRAND_GROUP_SPARSITY[0] + brand_sizes[:, None] / _BRAND_GROUP_SPARSITY[1],
            size=(n_brands, n_groups),
        )
        + 1e-9
    )
    item_group = _sample_rows(np.cumsum(brand_group, axis=1), item_brand, rng)
    # Every group has at least one item, as in the real catalogue.
    item_group[rng.choice(n_items, size=n_groups, replace=False)] = np.arange(n_groups)

    colours = np.array(list(_COLOURS), dtype=object)
    item_colour = colours[_weighted_choice(np.array(list(_COLOURS.values())), n_items, rng)]

    min_age, max_age = _ages(item_group, group_names, rng)

    # Popularity within the catalogue: moderate log-normal (see module docstring).
    popularity = np.exp(_ITEM_POPULARITY_SIGMA * rng.standard_normal(n_items))

    item_ids = _unique_ids(n_items, rng)
    table = pd.DataFrame(
        {
            "item_no": item_ids,
            "colour": item_colour,
            "gender_description": np.array(GENDERS_IN_ORDER, dtype=object)[item_gender],
            "brand": brand_names[item_brand],
            "product_group": group_names[item_group],
            "min_age": min_age,
            "max_age": max_age,
        }
    )
    # The real file is not sorted by brand; neither is the twin.
    order = rng.permutation(n_items)
    table = table.iloc[order].reset_index(drop=True)
    return {
        "table": table,
        "brand": item_brand[order],
        "gender": item_gender[order],
        "group": item_group[order],
        "popularity": popularity[order],
        "brand_sizes": brand_sizes,
        "n_groups": n_groups,
        "group_names": group_names,
    }


def _ages(item_group: np.ndarray, group_names: np.ndarray, rng: np.random.Generator):
    """Min and max age per item, missing for a share of items that favours non-clothes."""
    n_items = len(item_group)
    propensity = rng.beta(0.5, 1.5, size=len(group_names))
    propensity[np.isin(group_names, _AGELESS_GROUPS)] = 1.0
    # Missing for the items with the highest propensity (plus noise): an exact share.
    score = propensity[item_group] + 0.3 * rng.random(n_items)
    missing = np.zeros(n_items, dtype=bool)
    missing[np.argsort(-score, kind="stable")[: round(_AGE_MISSING_SHARE * n_items)]] = True

    low_values = np.array(list(_MIN_AGES))
    high_values = np.array(list(_MAX_AGES))
    low = low_values[_weighted_choice(np.array(list(_MIN_AGES.values())), n_items, rng)]
    high = high_values[_weighted_choice(np.array(list(_MAX_AGES.values())), n_items, rng)]
    low, high = np.minimum(low, high), np.maximum(low, high)
    return np.where(missing, np.nan, low), np.where(missing, np.nan, high)


# ---------------------------------------------------------------------------
# Shoppers and their picks
# ---------------------------------------------------------------------------


def _fitting_block(catalogue: dict, owner: str = "brand") -> dict:
    """Items sorted by (owner, gender), with the block of items each child fits.

    The owner is ``"brand"`` or ``"style"``. With genders ordered boys, unisex,
    girls, the items that fit a boy (boys or unisex) and those that fit a girl
    (unisex or girls) are each one contiguous block per brand (or style), so a
    pick is a single ``searchsorted`` on cumulative weights.
    """
    n_owners = int(catalogue[owner].max()) + 1
    key = catalogue[owner] * 3 + catalogue["gender"]
    order = np.argsort(key, kind="stable")
    boundaries = np.searchsorted(key[order], np.arange(n_owners * 3 + 1))
    starts = boundaries[:-1].reshape(n_owners, 3)
    ends = boundaries[1:].reshape(n_owners, 3)
    # [start, end) of the items each kind of shopper considers, per brand or style.
    # Kinds: boy (boys + unisex), girl (unisex + girls), two children (all),
    # then shoppers who keep to boys' items only, unisex items only, girls' items only.
    block_start = np.stack(
        [starts[:, 0], starts[:, 1], starts[:, 0], starts[:, 0], starts[:, 1], starts[:, 2]], axis=1
    )
    block_end = np.stack(
        [ends[:, 1], ends[:, 2], ends[:, 2], ends[:, 0], ends[:, 1], ends[:, 2]], axis=1
    )
    return {"order": order, "start": block_start, "end": block_end}


def _make_interactions(twin_size: TwinSize, catalogue: dict, rng: np.random.Generator):
    """Draw the distinct (user, item) pairs and each pair's first month."""
    n_users = twin_size.n_users
    user_ids = _unique_ids(n_users, rng)

    wanted = np.minimum(
        _ITEMS_PER_USER_CAP,
        1 + rng.negative_binomial(
            _ITEMS_PER_USER_SHAPE,
            _ITEMS_PER_USER_SHAPE / (_ITEMS_PER_USER_SHAPE + _ITEMS_PER_USER_MEAN),
            size=n_users,
        ),
    )  # fmt: skip

    # Who the user shops for (a kind of _fitting_block).
    child = _weighted_choice(_SHOPPER_KINDS, n_users, rng)

    blocks = _fitting_block(catalogue)
    order = blocks["order"]
    # Popularity and groups, in the blocks' order.
    sorted_popularity = catalogue["popularity"][order]
    sorted_group = catalogue["group"][order]
    block_size = blocks["end"] - blocks["start"]  # (brand, child kind)

    # Favourite brands: brands that have items fitting the child, chosen by
    # appeal (bigger brands are better known) - drawn with replacement, so a
    # user may end with fewer distinct favourites than slots.
    n_favourites = 1 + _weighted_choice(_FAVOURITE_BRAND_COUNTS, n_users, rng)
    appeal = catalogue["brand_sizes"] ** _BRAND_APPEAL_POWER * np.exp(
        0.5 * rng.standard_normal(len(block_size))
    )
    slots = len(_FAVOURITE_BRAND_RANK_WEIGHTS)
    favourite_brands = np.empty((n_users, slots), dtype=np.int64)
    for kind in range(len(_SHOPPER_KINDS)):  # one vectorised draw per kind, not per user
        members = np.flatnonzero(child == kind)
        weights = appeal * (block_size[:, kind] > 0)
        favourite_brands[members] = _weighted_choice(weights, members.size * slots, rng).reshape(
            -1, slots
        )

    cumulative = np.concatenate([[0.0], np.cumsum(sorted_popularity)])
    slot_weights = np.cumsum(_FAVOURITE_BRAND_RANK_WEIGHTS)

    def pick_in_favourite_brands(pick_user: np.ndarray) -> np.ndarray:
        """One item per entry of pick_user (positions in block order), by popularity."""
        slot_cap = slot_weights[n_favourites[pick_user] - 1]
        slot = np.searchsorted(slot_weights, rng.random(pick_user.size) * slot_cap, side="right")
        brand, kind = favourite_brands[pick_user, slot], child[pick_user]
        start, end = blocks["start"][brand, kind], blocks["end"][brand, kind]
        target = cumulative[start] + rng.random(pick_user.size) * (
            cumulative[end] - cumulative[start]
        )
        return np.clip(np.searchsorted(cumulative, target, side="right") - 1, start, end - 1)

    # Favourite product groups: those of a few items from the favourite brands,
    # so that they are groups these brands actually sell.
    seed_picks = pick_in_favourite_brands(np.repeat(np.arange(n_users), _FAVOURITE_GROUPS))
    favourite_groups = sorted_group[seed_picks].reshape(n_users, _FAVOURITE_GROUPS)

    # Draw more picks than needed, drop repeats, keep the first `wanted` per user.
    pick_user = np.repeat(np.arange(n_users), 3 * wanted + 10)
    n_draws = pick_user.size
    # Favour the user's groups by rejection: draw a few candidates and keep the
    # first one in a favourite group, if any.
    candidates = [pick_in_favourite_brands(pick_user) for _ in range(_GROUP_CANDIDATES)]
    chosen = candidates[-1]
    for candidate in reversed(candidates):
        in_favourite = (favourite_groups[pick_user] == sorted_group[candidate][:, None]).any(axis=1)
        chosen = np.where(in_favourite, candidate, chosen)
    favourite_pick = order[chosen]

    # Off-preference picks: an item of one of the user's favourite latent styles,
    # of any brand, that fits the child, by a sharpened popularity. Sorted by
    # (style, gender), the items of a style that fit a child are one block again.
    styles = _fitting_block(catalogue, "style")
    favourite_styles = rng.integers(len(styles["start"]), size=(n_users, _FAVOURITE_STYLES))
    style = favourite_styles[pick_user, rng.integers(_FAVOURITE_STYLES, size=n_draws)]
    start, end = styles["start"][style, child[pick_user]], styles["end"][style, child[pick_user]]
    off_cumulative = np.concatenate(
        [[0.0], np.cumsum(catalogue["popularity"][styles["order"]] ** _OFF_PREFERENCE_SHARPNESS)]
    )
    target = off_cumulative[start] + rng.random(n_draws) * (
        off_cumulative[end] - off_cumulative[start]
    )
    off_position = np.clip(
        np.searchsorted(off_cumulative, target, side="right") - 1, start, end - 1
    )
    off_pick = styles["order"][np.maximum(off_position, 0)]

    # Users who buy more explore more: their share of off-preference picks grows
    # with how many items they want. A style with no item for the child (only
    # possible in tiny twins) leaves the pick to the favourite brands.
    activity = (wanted / _ITEMS_PER_USER_MEAN) ** _EXPLORE_POWER
    off_share = np.minimum(_OFF_PREFERENCE_SHARE * activity, _OFF_PREFERENCE_MAX)[pick_user]
    is_off = (rng.random(n_draws) < off_share) & (end > start)
    pick_item = np.where(is_off, off_pick, favourite_pick)

    pairs = pd.DataFrame({"user": pick_user, "item": pick_item})
    pairs = pairs.drop_duplicates(ignore_index=True)
    rank_in_user = pairs.groupby("user").cumcount().to_numpy()
    pairs = pairs[rank_in_user < wanted[pairs["user"].to_numpy()]].reset_index(drop=True)
    pairs["month"] = _first_months(pairs, catalogue, n_users, rng)
    return pairs, user_ids


def _first_months(pairs: pd.DataFrame, catalogue: dict, n_users: int, rng: np.random.Generator):
    """Month (1..11) of each pair's first event.

    The probability of a month is the product of a store-wide trend, the
    product group's season and the user's own shopping season.
    """
    months = np.arange(1, _MONTHS + 1)
    trend = np.exp(0.1 * (months - 1))
    trend[-1] *= 1.4  # November sales

    group_names = catalogue["group_names"]
    peak = rng.uniform(1, 12, size=len(group_names))
    strength = rng.uniform(0.0, 0.4, size=len(group_names))
    summer = np.isin(group_names, _SUMMER_GROUPS)
    winter = np.isin(group_names, _WINTER_GROUPS)
    peak[summer], strength[summer] = 6.5, 1.5
    peak[winter], strength[winter] = 12.5, 1.2
    season = np.exp(strength[:, None] * np.cos(2 * np.pi * (months[None, :] - peak[:, None]) / 12))

    user_season = _weighted_choice(trend, n_users, rng) + 1
    distance = months[None, :] - user_season[:, None]
    closeness = np.exp(-0.5 * (distance / 2.0) ** 2) + 0.05

    user = pairs["user"].to_numpy()
    group = catalogue["group"][pairs["item"].to_numpy()]
    weights = trend[None, :] * season[group] * closeness[user]
    return 1 + _sample_rows(np.cumsum(weights, axis=1), np.arange(len(pairs)), rng)


def _split_pairs(
    pairs: pd.DataFrame, user_ids: np.ndarray, catalogue: dict, rng: np.random.Generator
):
    """Join item metadata, shuffle, and split the pairs 85% / 15% at random."""
    items = catalogue["table"]
    item_rows = pairs["item"].to_numpy()
    table = pd.DataFrame(
        {
            "user_no": user_ids[pairs["user"].to_numpy()],
            "item_no": items["item_no"].to_numpy()[item_rows],
            "gender_description": items["gender_description"].to_numpy()[item_rows],
            "brand": items["brand"].to_numpy()[item_rows],
            "product_group": items["product_group"].to_numpy()[item_rows],
            "first_interaction_month": pairs["month"].to_numpy().astype(np.int64),
        }
    )
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    is_test = rng.random(len(table)) < _TEST_SHARE
    return table[~is_test].reset_index(drop=True), table[is_test].reset_index(drop=True)


def _make_user_info(twin_size: TwinSize, user_ids, pairs, rng: np.random.Generator):
    """The user_info table: a subset of users, more likely the more they shop."""
    counts = np.bincount(pairs["user"].to_numpy(), minlength=twin_size.n_users)
    # Gumbel top-k: a weighted sample without replacement, in one vectorised step.
    keys = np.log(counts + 1.0) - np.log(-np.log(rng.random(twin_size.n_users)))
    chosen = np.argsort(-keys, kind="stable")[: twin_size.n_info_users]

    # Average order value: log-normal with the real median (542.7) and mean (703.6).
    aov = np.exp(np.log(542.7) + 0.72 * rng.standard_normal(chosen.size))
    aov = np.clip(aov, 24.0, 16_618.4).round(2)
    # Average markdown: a scaled beta (mean -0.33), with a few users who never buy on sale.
    markdown = -0.912 * rng.beta(2.9, 5.1, size=chosen.size)
    markdown[rng.random(chosen.size) < 0.02] = 0.0
    return pd.DataFrame(
        {
            "user_no": user_ids[chosen],
            "country": np.full(chosen.size, "sweden", dtype=object),
            "aov": aov.astype(np.float64),
            "avg_markdown": markdown.round(3).astype(np.float64) + 0.0,  # + 0.0 turns -0.0 into 0.0
        }
    )


# ---------------------------------------------------------------------------
# Files on disk
# ---------------------------------------------------------------------------


def twin_dir(data_dir: Path, size: str = "default", seed: int = 0) -> Path:
    """The folder a twin of this size and seed is stored in.

    Args:
        data_dir: the course's data folder.
        size: a key of :data:`SIZES`.
        seed: the random seed.

    Returns:
        ``data_dir / "synthetic" / f"{size}-seed{seed}"``.
    """
    return Path(data_dir) / "synthetic" / f"{size}-seed{seed}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    # Fixed line endings and encoding: the bytes, and so the sha256, must not
    # depend on the platform that builds the twin.
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def write_twin(data_dir: Path, size: str = "default", seed: int = 0) -> Path:
    """Generate a twin and write its four CSV files and a manifest, atomically.

    Everything is written into a temporary folder next to the target and then
    renamed into place, so the target folder is either absent, the previous
    complete twin, or the new complete twin - never half written.

    Args:
        data_dir: the course's data folder.
        size: a key of :data:`SIZES`.
        seed: the random seed.

    Returns:
        The twin's folder (see :func:`twin_dir`).
    """
    target = twin_dir(data_dir, size, seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        tables = generate_twin(size, seed)
        files = {}
        for table in TABLES:
            path = building / FILE_NAMES[table]
            _write_table(tables[table], path)
            files[FILE_NAMES[table]] = {"sha256": _sha256(path), "rows": len(tables[table])}
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "size": size,
            "seed": seed,
            "dimensions": asdict(SIZES[size]),
            "files": files,
        }
        (building / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _replace_folder(building, target)
    finally:
        # Only left behind if something failed before the rename.
        shutil.rmtree(building, ignore_errors=True)
    return target


def _replace_folder(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``, replacing any existing folder there."""
    if not target.exists():
        os.replace(new, target)
        return
    # A folder cannot be renamed over a non-empty one: move the old one aside
    # first, so the target is always either the old or the new complete twin.
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.retired-", dir=target.parent))
    os.replace(target, retired / target.name)
    os.replace(new, target)
    shutil.rmtree(retired, ignore_errors=True)


def twin_is_valid(folder: Path, size: str = "default", seed: int = 0) -> bool:
    """Whether ``folder`` holds a complete, untampered twin of this generator version.

    Args:
        folder: a folder written by :func:`write_twin`.
        size: the size it should have.
        seed: the seed it should have.

    Returns:
        True if its manifest names this generator version, size and seed, and
        every file it lists exists with the recorded sha256.
    """
    manifest_path = Path(folder) / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return False
    if (manifest.get("generator_version"), manifest.get("size"), manifest.get("seed")) != (
        GENERATOR_VERSION,
        size,
        seed,
    ):
        return False
    if set(manifest["files"]) != {FILE_NAMES[table] for table in TABLES}:
        return False
    for name, entry in manifest["files"].items():
        path = Path(folder) / name
        if (
            not path.is_file()
            or not isinstance(entry, dict)
            or _sha256(path) != entry.get("sha256")
        ):
            return False
    return True


def ensure_twin(data_dir: Path, size: str = "default", seed: int = 0) -> Path:
    """Return the twin's folder, building it if it is missing, stale or tampered with.

    Args:
        data_dir: the course's data folder.
        size: a key of :data:`SIZES`.
        seed: the random seed.

    Returns:
        The twin's folder (see :func:`twin_dir`), holding the four CSV files
        named in :data:`tfrs_course.data.schema.FILE_NAMES` and ``manifest.json``.
    """
    folder = twin_dir(data_dir, size, seed)
    if twin_is_valid(folder, size, seed):
        return folder
    return write_twin(data_dir, size, seed)
