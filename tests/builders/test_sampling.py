"""Tests of the learn/validation split, the training-pixel selection and the class statistics report."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from iota2.builders.sampling import (
    SELECTION_STREAM,
    SPLIT_STREAM,
    check_byclass_labels,
    class_statistics_table,
    learn_count,
    params_for_model,
    run_seed,
    select_samples,
    split_polygons,
    validate_sample_selection,
    write_class_statistics,
)
from iota2.core.errors import ConfigError

CLASS_SIZES = {11: 1000, 12: 300, 31: 120, 42: 40}


def make_candidates(sizes: dict[int, int] = CLASS_SIZES) -> pd.DataFrame:
    """Candidate pixels of unbalanced classes, interleaved, sorted by (tile, row, col)."""
    labels = np.concatenate([np.full(count, label) for label, count in sizes.items()])
    order = np.random.default_rng(123).permutation(len(labels))
    labels = labels[order]
    width = 50
    positions = np.arange(len(labels))
    table = pd.DataFrame({
        "code": labels.astype(np.int64),
        "originfid": positions // 20,
        "tile": np.where(positions < len(labels) // 2, "T31TCJ", "T31TDJ"),
        "row": (positions % (len(labels) // 2 + 1)) // width,
        "col": (positions % (len(labels) // 2 + 1)) % width,
    })
    return table.sort_values(["tile", "row", "col"], kind="stable").reset_index(drop=True)


def per_class(selected: pd.DataFrame) -> dict[int, int]:
    return {int(label): int(count) for label, count in selected["code"].value_counts().sort_index().items()}


@pytest.fixture
def candidates() -> pd.DataFrame:
    return make_candidates()


# ---------------------------------------------------------------------------------------------------------------------
# strategies x samplers
# ---------------------------------------------------------------------------------------------------------------------

SAMPLERS = ["random", "periodic"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_all_keeps_every_pixel(candidates, sampler):
    selected = select_samples(candidates, "code", {"sampler": sampler, "strategy": "all"}, seed=0)
    pd.testing.assert_frame_equal(selected, candidates)


def test_default_parameters_select_all(candidates):
    assert len(select_samples(candidates, "code", {}, seed=0)) == len(candidates)
    assert len(select_samples(candidates, "code", None, seed=0)) == len(candidates)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_constant(candidates, sampler):
    selected = select_samples(candidates, "code",
                              {"sampler": sampler, "strategy": "constant", "strategy.constant.nb": 30}, seed=1)
    assert per_class(selected) == {11: 30, 12: 30, 31: 30, 42: 30}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_constant_50(candidates, sampler):
    selected = select_samples(candidates, "code",
                              {"sampler": sampler, "strategy": "constant", "strategy.constant.nb": 50}, seed=1)
    # class 42 has only 40 pixels: all are taken
    assert per_class(selected) == {11: 50, 12: 50, 31: 50, 42: 40}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_constant_above_class_size_is_capped_with_warning(candidates, sampler, caplog):
    with caplog.at_level(logging.WARNING, logger="iota2.builders.sampling"):
        selected = select_samples(candidates, "code",
                                  {"sampler": sampler, "strategy": "constant", "strategy.constant.nb": 200}, seed=1)
    assert per_class(selected) == {11: 200, 12: 200, 31: 120, 42: 40}
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    messages = " ".join(record.getMessage() for record in warnings)
    assert "31" in messages and "42" in messages and "11 " not in messages


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_byclass_from_csv(candidates, sampler, tmp_path, caplog):
    csv_path = tmp_path / "per_class.csv"
    csv_path.write_text("11,100\n12,7\n42,60\n99,5\n")
    params = {"sampler": sampler, "strategy": "byclass", "strategy.byclass.in": str(csv_path)}
    with caplog.at_level(logging.WARNING, logger="iota2.builders.sampling"):
        selected = select_samples(candidates, "code", params, seed=3)
    # 31 not listed -> 0; 42 asks 60 of 40 -> capped; 99 absent from the candidates -> ignored
    assert per_class(selected) == {11: 100, 12: 7, 42: 40}
    assert any("42" in record.getMessage() for record in caplog.records)


def test_byclass_csv_with_header_and_comments(candidates, tmp_path):
    csv_path = tmp_path / "per_class.csv"
    csv_path.write_text("# requested samples\nlabel,count\n11;10\n12 20\n\n31\t5\n")
    selected = select_samples(candidates, "code", {"strategy": "byclass", "strategy.byclass.in": str(csv_path)},
                              seed=0)
    assert per_class(selected) == {11: 10, 12: 20, 31: 5}


def test_byclass_csv_bad_count_is_reported(candidates, tmp_path):
    csv_path = tmp_path / "per_class.csv"
    csv_path.write_text("11,10\n12,many\n")
    with pytest.raises(ConfigError, match="strategy.byclass.in"):
        select_samples(candidates, "code", {"strategy": "byclass", "strategy.byclass.in": str(csv_path)}, seed=0)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_percent(candidates, sampler):
    selected = select_samples(candidates, "code",
                              {"sampler": sampler, "strategy": "percent", "strategy.percent.p": 0.1}, seed=5)
    assert per_class(selected) == {11: 100, 12: 30, 31: 12, 42: 4}


def test_strategy_percent_default_is_half(candidates):
    selected = select_samples(candidates, "code", {"strategy": "percent"}, seed=5)
    assert per_class(selected) == {11: 500, 12: 150, 31: 60, 42: 20}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_total_is_proportional_with_exact_sum(candidates, sampler):
    selected = select_samples(candidates, "code", {"sampler": sampler, "strategy": "total", "strategy.total.v": 1000},
                              seed=2)
    counts = per_class(selected)
    assert sum(counts.values()) == 1000
    # quotas 1000 * size / 1460: 684.93, 205.48, 82.19, 27.40 -> largest remainders get the 2 missing units
    assert counts == {11: 685, 12: 206, 31: 82, 42: 27}


def test_strategy_total_default_and_above_available():
    small = make_candidates({1: 300, 2: 200})
    assert per_class(select_samples(small, "code", {"strategy": "total"}, seed=0)) == {1: 300, 2: 200}
    counts = per_class(select_samples(make_candidates(), "code", {"strategy": "total"}, seed=0))
    assert sum(counts.values()) == 1000


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strategy_smallest(candidates, sampler):
    selected = select_samples(candidates, "code", {"sampler": sampler, "strategy": "smallest"}, seed=4)
    assert per_class(selected) == {11: 40, 12: 40, 31: 40, 42: 40}


def test_selection_is_a_subset_with_same_columns(candidates):
    selected = select_samples(candidates, "code", {"strategy": "percent", "strategy.percent.p": 0.3}, seed=9)
    assert list(selected.columns) == list(candidates.columns)
    assert selected.index.isin(candidates.index).all()
    assert selected.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(selected, candidates.loc[selected.index])


def test_empty_candidates(candidates):
    selected = select_samples(candidates.iloc[:0], "code", {"strategy": "smallest"}, seed=0)
    assert selected.empty and list(selected.columns) == list(candidates.columns)


# ---------------------------------------------------------------------------------------------------------------------
# periodic sampler
# ---------------------------------------------------------------------------------------------------------------------

def test_periodic_spacing_is_even():
    table = make_candidates({7: 1000})
    selected = select_samples(table, "code", {"sampler": "periodic", "strategy": "percent",
                                              "strategy.percent.p": 0.1}, seed=0)
    positions = table.index.get_indexer(selected.index)
    # one pixel in ten, the 10th, 20th, ...
    np.testing.assert_array_equal(positions, np.arange(9, 1000, 10))


def test_periodic_spacing_with_non_integer_period():
    table = make_candidates({7: 1000})
    selected = select_samples(table, "code", {"sampler": "periodic", "strategy": "constant",
                                              "strategy.constant.nb": 300}, seed=0)
    positions = table.index.get_indexer(selected.index)
    assert len(positions) == 300
    gaps = np.diff(positions)
    assert set(gaps.tolist()) <= {3, 4}  # period 1000 / 300 = 3.33
    # spread over the whole class, not bunched at the start
    assert positions[0] < 4 and positions[-1] >= 996


def test_periodic_follows_candidate_order_within_each_class(candidates):
    selected = select_samples(candidates, "code", {"sampler": "periodic", "strategy": "percent",
                                                   "strategy.percent.p": 0.25}, seed=0)
    for label, count in CLASS_SIZES.items():
        class_positions = np.flatnonzero(candidates["code"].to_numpy() == label)
        kept = np.flatnonzero(np.isin(class_positions, candidates.index.get_indexer(
            selected.index[selected["code"] == label])))
        np.testing.assert_array_equal(kept, np.arange(3, count, 4))


def test_periodic_without_jitter_ignores_seed(candidates):
    params = {"sampler": "periodic", "strategy": "constant", "strategy.constant.nb": 30}
    first = select_samples(candidates, "code", params, seed=0)
    second = select_samples(candidates, "code", params, seed=99)
    pd.testing.assert_frame_equal(first, second)


def test_periodic_jitter_shifts_the_phase_keeping_the_count():
    table = make_candidates({7: 1000})
    params = {"sampler": "periodic", "sampler.periodic.jitter": 9, "strategy": "percent", "strategy.percent.p": 0.1}
    phases = set()
    for seed in range(20):
        positions = table.index.get_indexer(select_samples(table, "code", params, seed=seed).index)
        assert len(positions) == 100
        assert set(np.diff(positions).tolist()) == {10}
        phases.add(int(positions[0]))
    assert len(phases) > 1
    assert phases <= set(range(10))


# ---------------------------------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------------------------------

def test_random_same_seed_same_rows(candidates):
    params = {"sampler": "random", "strategy": "constant", "strategy.constant.nb": 30}
    first = select_samples(candidates, "code", params, seed=7)
    second = select_samples(candidates, "code", params, seed=7)
    pd.testing.assert_frame_equal(first, second)


def test_random_other_seed_other_rows(candidates):
    params = {"sampler": "random", "strategy": "constant", "strategy.constant.nb": 30}
    first = select_samples(candidates, "code", params, seed=7)
    second = select_samples(candidates, "code", params, seed=8)
    assert not first.index.equals(second.index)
    assert per_class(first) == per_class(second)


def test_rand_key_overrides_seed(candidates):
    params = {"strategy": "constant", "strategy.constant.nb": 30}
    with_rand = select_samples(candidates, "code", {**params, "rand": 0}, seed=123)
    with_seed = select_samples(candidates, "code", params, seed=0)
    other = select_samples(candidates, "code", params, seed=123)
    pd.testing.assert_frame_equal(with_rand, with_seed)
    assert not with_rand.index.equals(other.index)


def test_random_selection_is_spread_over_the_class():
    table = make_candidates({7: 1000})
    selected = select_samples(table, "code", {"strategy": "percent", "strategy.percent.p": 0.2}, seed=0)
    positions = table.index.get_indexer(selected.index)
    assert len(positions) == 200
    # not periodic and not bunched
    assert len(set(np.diff(positions).tolist())) > 3
    assert positions.min() < 100 and positions.max() > 900


# ---------------------------------------------------------------------------------------------------------------------
# polygon split
# ---------------------------------------------------------------------------------------------------------------------

def make_polygons(groups: dict[tuple[str, int], int]) -> gpd.GeoDataFrame:
    """``groups``: (region, class) -> number of polygons; fids are unique and not in row order."""
    rows = []
    fid = 0
    for (region, label), count in groups.items():
        for _ in range(count):
            rows.append({"region": region, "code": label, "originfid": fid, "geometry": box(fid, 0, fid + 1, 1)})
            fid += 1
    frame = gpd.GeoDataFrame(rows, crs="EPSG:2154")
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


def expected_split(polygons, ratio, seed, run):
    """The documented draw: one generator per run, groups in (region, class) order, a permutation of the sorted
    ids of each group whose first ``learn_count`` ids are learnt."""
    rng = np.random.default_rng(run_seed(seed, run, SPLIT_STREAM))
    learn = set()
    for _, group in polygons.groupby(["region", "code"], sort=True):
        ordered = np.unique(group["originfid"])
        if len(ordered) > 1:
            learn |= set(ordered[rng.permutation(len(ordered))[:learn_count(len(ordered), ratio)]].tolist())
    return learn


def test_split_follows_the_documented_draw():
    polygons = make_polygons({("1", 11): 10, ("1", 12): 7, ("2", 11): 4})
    split = split_polygons(polygons, "code", "region", ratio=0.7, seed=0, run=2)
    learn = expected_split(polygons, 0.7, seed=0, run=2)
    assert set(polygons["originfid"][split == "learn"]) == learn
    assert set(polygons["originfid"][split == "validation"]) == set(polygons["originfid"]) - learn


def test_split_counts_are_stratified_by_region_and_class():
    polygons = make_polygons({("1", 11): 10, ("1", 12): 7, ("2", 11): 4, ("2", 12): 3})
    split = split_polygons(polygons, "code", "region", ratio=0.7, seed=0, run=0)
    frame = polygons.assign(set=split)
    learn = frame[frame["set"] == "learn"].groupby(["region", "code"]).size().to_dict()
    validation = frame[frame["set"] == "validation"].groupby(["region", "code"]).size().to_dict()
    # round(7.0)=7, round(4.9)=5, round(2.8)=3, round(2.1)=2
    assert learn == {("1", 11): 7, ("1", 12): 5, ("2", 11): 3, ("2", 12): 2}
    assert validation == {("1", 11): 3, ("1", 12): 2, ("2", 11): 1, ("2", 12): 1}


def test_split_round_half_to_even():
    polygons = make_polygons({("1", 11): 5})
    split = split_polygons(polygons, "code", "region", ratio=0.5, seed=0, run=0)
    assert (split == "learn").sum() == 2  # round(2.5) == 2
    assert (split == "validation").sum() == 3


def test_split_at_least_one_learning_polygon():
    polygons = make_polygons({("1", 11): 3})
    split = split_polygons(polygons, "code", "region", ratio=0.1, seed=0, run=0)
    assert (split == "learn").sum() == 1


def test_split_single_polygon_is_both():
    polygons = make_polygons({("1", 11): 1, ("1", 12): 4})
    split = split_polygons(polygons, "code", "region", ratio=0.5, seed=0, run=0)
    single = polygons["code"].to_numpy() == 11
    assert split[single].tolist() == ["both"]
    assert set(split[~single].tolist()) == {"learn", "validation"}


def test_split_same_seed_same_split_and_runs_differ():
    polygons = make_polygons({("1", 11): 40, ("1", 12): 30})
    first = split_polygons(polygons, "code", "region", ratio=0.5, seed=0, run=0)
    again = split_polygons(polygons, "code", "region", ratio=0.5, seed=0, run=0)
    other_run = split_polygons(polygons, "code", "region", ratio=0.5, seed=0, run=1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_run)
    assert (first == "learn").sum() == (other_run == "learn").sum() == 35


def test_split_run_of_the_next_seed_is_not_the_previous_run():
    """Run r of seed s and run r - 1 of seed s + 1 were the same draw (random.Random(seed + run))."""
    polygons = make_polygons({("1", 11): 40})
    for seed, run in ((3, 1), (0, 5), (10, 2)):
        assert not np.array_equal(split_polygons(polygons, "code", "region", 0.5, seed=seed, run=run),
                                  split_polygons(polygons, "code", "region", 0.5, seed=seed + 1, run=run - 1))


def positional_patterns(polygons, split):
    """Per (region, class): which ranks of the sorted polygon ids are learnt."""
    frame = polygons.assign(set=split)
    patterns = {}
    for key, group in frame.groupby(["region", "code"]):
        group = group.sort_values("originfid")
        patterns[key] = tuple(group["set"].to_numpy() == "learn")
    return patterns


def test_classes_of_the_same_size_are_not_split_alike():
    """Each class used to get a generator seeded alike, hence the same positional split: 20 classes of 10
    polygons all learnt the same ranks. Now they share one generator per run."""
    polygons = make_polygons({("1", label): 10 for label in range(1, 21)})
    patterns = positional_patterns(polygons, split_polygons(polygons, "code", "region", 0.5, seed=0, run=0))
    # 252 possible patterns of 5 among 10: 20 independent draws give at least 15 distinct ones but for a
    # chance below 1e-4 (and 1 when classes are split alike)
    assert len(set(patterns.values())) >= 15
    regions = make_polygons({(region, 7): 10 for region in ("1", "2", "3", "4", "5", "6")})
    patterns = positional_patterns(regions, split_polygons(regions, "code", "region", 0.5, seed=0, run=0))
    assert len(set(patterns.values())) >= 4


def test_runs_are_independent_draws():
    """Over 10 runs the learnt sets differ, and two runs share about as many learning polygons as independent
    draws do (half of the 20 learnt of 40, on average)."""
    polygons = make_polygons({("1", 11): 40})
    learnt = []
    for run in range(10):
        split = split_polygons(polygons, "code", "region", 0.5, seed=0, run=run)
        learnt.append(set(polygons["originfid"][split == "learn"]))
        assert len(learnt[-1]) == 20
    shared = [len(a & b) for i, a in enumerate(learnt) for b in learnt[i + 1:]]
    assert len({frozenset(s) for s in learnt}) == 10
    assert 7 <= np.mean(shared) <= 13


@pytest.mark.parametrize("count, ratio, learn", [(2, 0.75, 1), (2, 1.0, 1), (3, 0.9, 2), (4, 0.75, 3), (2, 0.1, 1)])
def test_every_split_class_keeps_a_validation_polygon(count, ratio, learn):
    """A class of n >= 2 polygons keeps one for validation (ratio 0.75 with n = 2 used to learn both)."""
    polygons = make_polygons({("1", 11): count})
    split = split_polygons(polygons, "code", "region", ratio, seed=0, run=0)
    assert (split == "learn").sum() == learn and (split == "validation").sum() == count - learn


def test_split_without_seed_differs_between_calls():
    polygons = make_polygons({("1", 11): 40})
    splits = {tuple(split_polygons(polygons, "code", "region", 0.5, seed=None, run=0)) for _ in range(3)}
    assert len(splits) > 1


def test_run_seed_streams_are_distinct():
    """Split and selection, runs, regions and seeds each get their own stream; the same key the same one."""
    keys = [(0, 0, SPLIT_STREAM, ""), (0, 0, SELECTION_STREAM, "1"), (0, 1, SELECTION_STREAM, "1"),
            (1, 0, SELECTION_STREAM, "1"), (0, 0, SELECTION_STREAM, "2"), (0, 0, SELECTION_STREAM, "12"),
            (-1, 0, SELECTION_STREAM, "1"), (0, 0, SELECTION_STREAM, "")]
    draws = [tuple(np.random.default_rng(run_seed(*key)).integers(0, 2**62, 4)) for key in keys]
    assert len(set(draws)) == len(keys)
    assert draws[1] == tuple(np.random.default_rng(run_seed(0, 0, SELECTION_STREAM, "1")).integers(0, 2**62, 4))
    fresh = {tuple(np.random.default_rng(run_seed(None, 0, SPLIT_STREAM)).integers(0, 2**62, 4)) for _ in range(3)}
    assert len(fresh) == 3


def test_split_without_seed_keeps_counts():
    polygons = make_polygons({("1", 11): 40})
    split = split_polygons(polygons, "code", "region", 0.75, seed=None, run=0)
    assert (split == "learn").sum() == 30


def test_split_pieces_of_one_polygon_stay_together():
    polygons = make_polygons({("1", 11): 6})
    pieces = pd.concat([polygons, polygons.iloc[:3]], ignore_index=True)  # 3 polygons cut in two
    split = split_polygons(pieces, "code", "region", ratio=0.5, seed=0, run=0)
    for fid, group in pd.Series(split).groupby(pieces["originfid"]):
        assert group.nunique() == 1
    assert pieces["originfid"][split == "learn"].nunique() == 3


def test_split_ground_truth_false_is_all_both():
    polygons = make_polygons({("1", 11): 10, ("2", 12): 3})
    split = split_polygons(polygons, "code", "region", ratio=0.5, seed=0, run=0, split_ground_truth=False)
    assert split.tolist() == ["both"] * len(polygons)


def test_split_bad_ratio():
    polygons = make_polygons({("1", 11): 3})
    with pytest.raises(ConfigError, match="arg_train.ratio"):
        split_polygons(polygons, "code", "region", ratio=1.5, seed=0, run=0)


# ---------------------------------------------------------------------------------------------------------------------
# parameters, per_model
# ---------------------------------------------------------------------------------------------------------------------

def test_validate_fills_defaults():
    normalised = validate_sample_selection({})
    assert normalised["sampler"] == "random"
    assert normalised["strategy"] == "all"
    assert normalised["strategy.percent.p"] == 0.5
    assert normalised["strategy.total.v"] == 1000
    assert normalised["sampler.periodic.jitter"] == 0
    assert normalised["rand"] is None
    assert normalised["per_model"] == []
    assert validate_sample_selection(normalised) == normalised


def test_keys_of_another_strategy_are_warned(caplog):
    normalised = validate_sample_selection({"strategy": "percent", "strategy.constant.nb": 300,
                                            "sampler.periodic.jitter": 2})
    messages = [record.getMessage() for record in caplog.records]
    assert any("strategy.constant.nb is set but strategy is 'percent'" in m for m in messages)
    assert any("sampler.periodic.jitter is set but sampler is 'random'" in m for m in messages)
    assert normalised["strategy.percent.p"] == 0.5
    caplog.clear()
    for params in ({"strategy": "constant", "strategy.constant.nb": 300}, validate_sample_selection({})):
        validate_sample_selection(params)  # the defaults of the other strategies are not the user's settings
    assert not [r for r in caplog.records if "is set but" in r.getMessage()]


def test_byclass_file_leaving_out_classes_is_warned(tmp_path, caplog):
    csv = tmp_path / "counts.csv"
    csv.write_text("1,100\n2,100\n99,5\n")
    params = validate_sample_selection({"strategy": "byclass", "strategy.byclass.in": str(csv)})
    check_byclass_labels(params, [1, 2, 3, 4])
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "no line for class(es) 3, 4 of the ground truth" in messages
    assert "label(s) 99 that are not in the ground truth" in messages


def test_validate_accepts_nested_and_dotted_keys():
    dotted = validate_sample_selection({"strategy": "constant", "strategy.constant.nb": 500})
    nested = validate_sample_selection({"strategy": "constant", "strategy.constant": {"nb": 500}})
    assert dotted == nested
    assert dotted["strategy.constant.nb"] == 500


def test_per_model_override(candidates):
    params = {
        "sampler": "random", "strategy": "percent", "strategy.percent.p": 0.1,
        "per_model": [{"target_model": 2, "sampler": "periodic", "strategy": "constant",
                       "strategy.constant.nb": 10}],
    }
    assert params_for_model(params, "1") == {"sampler": "random", "strategy": "percent", "strategy.percent.p": 0.1}
    assert params_for_model(params, "2") == {"sampler": "periodic", "strategy": "constant",
                                             "strategy.constant.nb": 10}
    assert params_for_model(params, "2f3")["strategy"] == "constant"  # sub-model of a split region
    assert params_for_model(params, "12")["strategy"] == "percent"
    assert per_class(select_samples(candidates, "code", params_for_model(params, "1"), seed=0)) == \
        {11: 100, 12: 30, 31: 12, 42: 4}
    assert per_class(select_samples(candidates, "code", params_for_model(params, "2"), seed=0)) == \
        {11: 10, 12: 10, 31: 10, 42: 10}


def test_per_models_spelling_and_normalised_params():
    params = {"strategy": "all", "per_models": [{"target_model": "north", "strategy": "smallest"}]}
    normalised = validate_sample_selection(params)
    assert normalised["per_model"][0]["target_model"] == "north"
    assert params_for_model(normalised, "north")["strategy"] == "smallest"
    assert params_for_model(normalised, "south")["strategy"] == "all"
    assert "per_model" not in params_for_model(normalised, "south")
    assert "target_model" not in params_for_model(normalised, "north")


@pytest.mark.parametrize("params, key", [
    ({"strategy": "everything"}, "arg_train.sample_selection.strategy"),
    ({"sampler": "regular"}, "arg_train.sample_selection.sampler"),
    ({"strategie": "all"}, "arg_train.sample_selection.strategie"),
    ({"strategy": "constant"}, "arg_train.sample_selection.strategy.constant.nb"),
    ({"strategy": "constant", "strategy.constant.nb": "lots"}, "arg_train.sample_selection.strategy.constant.nb"),
    ({"strategy": "constant", "strategy.constant.nb": 0}, "arg_train.sample_selection.strategy.constant.nb"),
    ({"strategy": "percent", "strategy.percent.p": 1.5}, "arg_train.sample_selection.strategy.percent.p"),
    ({"strategy": "percent", "strategy.percent.p": 0}, "arg_train.sample_selection.strategy.percent.p"),
    ({"strategy": "total", "strategy.total.v": 2.5}, "arg_train.sample_selection.strategy.total.v"),
    ({"sampler.periodic.jitter": -1}, "arg_train.sample_selection.sampler.periodic.jitter"),
    ({"rand": True}, "arg_train.sample_selection.rand"),
    ({"strategy": "byclass"}, "arg_train.sample_selection.strategy.byclass.in"),
    ({"strategy": "byclass", "strategy.byclass.in": "/no/such/file.csv"},
     "arg_train.sample_selection.strategy.byclass.in"),
    ({"per_model": [{"strategy": "all"}]}, "arg_train.sample_selection.per_model[0].target_model"),
    ({"per_model": [{"target_model": 1, "strategy": "bad"}]}, "arg_train.sample_selection.per_model[0].strategy"),
    ({"per_model": "1"}, "arg_train.sample_selection.per_model"),
])
def test_bad_parameters_name_the_key(candidates, params, key):
    with pytest.raises(ConfigError) as error:
        validate_sample_selection(params)
    assert key in str(error.value)
    with pytest.raises(ConfigError):
        select_samples(candidates, "code", params, seed=0)


def test_bad_values_list_the_allowed_ones():
    with pytest.raises(ConfigError) as error:
        validate_sample_selection({"strategy": "everything"})
    for strategy in ("all", "constant", "byclass", "percent", "total", "smallest"):
        assert strategy in str(error.value)
    with pytest.raises(ConfigError, match="did you mean 'strategy'"):
        validate_sample_selection({"strategie": "all"})


@pytest.mark.parametrize("key", ["outrates", "in", "mask", "vec", "out", "instats", "field", "layer", "inxml"])
def test_forbidden_keys_are_set_by_iota2(key):
    with pytest.raises(ConfigError) as error:
        validate_sample_selection({key: "x"})
    assert f"arg_train.sample_selection.{key}" in str(error.value)
    assert "iota2 sets" in str(error.value)


# ---------------------------------------------------------------------------------------------------------------------
# class statistics
# ---------------------------------------------------------------------------------------------------------------------

NAMES = {1: "batis denses", 2: "batis diffus", 5: "colza", 23: "eau", 255: "autres"}


def test_class_statistics_table():
    counts = {"2": {2: 10, 5: 4}, "1": {2: 2000, 5: 2000, 23: 1500}}
    table = class_statistics_table(counts, labels=[1, 2, 5, 23, 255], class_names=NAMES)
    assert list(table.columns) == ["Class", "Label", "Region 1", "Region 2", "Total"]
    assert table["Class"].tolist() == ["batis denses", "batis diffus", "colza", "eau", "autres", "Total"]
    assert table["Label"].tolist()[:-1] == [1, 2, 5, 23, 255]
    assert table["Region 1"].tolist() == [0, 2000, 2000, 1500, 0, 5500]
    assert table["Region 2"].tolist() == [0, 10, 4, 0, 0, 14]
    assert table["Total"].tolist() == [0, 2010, 2004, 1500, 0, 5514]


def test_class_statistics_keeps_labels_missing_from_the_nomenclature():
    table = class_statistics_table({"1": {7: 3}}, labels=[1], class_names=NAMES)
    assert table["Label"].tolist()[:-1] == [1, 7]
    assert table["Class"].tolist()[:-1] == ["batis denses", "7"]
    assert table["Total"].tolist() == [0, 3, 3]


def test_class_statistics_regions_in_numeric_order():
    table = class_statistics_table({"10": {1: 1}, "9": {1: 2}, "2": {1: 3}}, labels=[1], class_names=NAMES)
    assert list(table.columns) == ["Class", "Label", "Region 2", "Region 9", "Region 10", "Total"]


def test_write_class_statistics(tmp_path):
    table = class_statistics_table({"1": {2: 2000, 5: 2000}}, labels=[1, 2, 5, 255], class_names=NAMES)
    path = write_class_statistics(tmp_path / "learningSamples" / "class_statistics_seed0_learn.csv", table)
    assert path.exists()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Class,Label,Region 1,Total"
    assert lines[1] == "batis denses,1,0,0"
    assert lines[-2] == "autres,255,0,0"
    assert lines[-1] == "Total,,4000,4000"
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]  # no temporary file left
    read_back = pd.read_csv(path)
    assert read_back["Total"].tolist() == [0, 2000, 2000, 0, 4000]


def test_ground_truth_pixels_do_not_depend_on_the_stripes(tmp_path, make_config, monkeypatch):
    """Tiles are rasterised in stripes of rows, each with only the polygons that reach it: polygons across
    stripe edges give the same pixels as a single stripe."""
    from iota2.builders import samples
    from iota2.cli import main

    tables = []
    for stripe_rows in (1024, 7):
        monkeypatch.setattr(samples, "STRIPE_ROWS", stripe_rows)
        output = tmp_path / f"out_{stripe_rows}"
        config = make_config(name=f"c{stripe_rows}.yaml", output=output, chain={"last_step": "sampling"})
        assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
        tables.append(pd.read_parquet(samples.pixels_path(output, "T31TCJ")))
    assert len(tables[0]) > 1000
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_selection_does_not_repeat_the_warnings_of_the_start_check(candidates, caplog):
    """A key of another strategy is warned about once, at start: the selection tasks validate silently."""
    params = {"strategy": "constant", "strategy.constant.nb": 30, "strategy.percent.p": 0.3}
    validate_sample_selection(params)
    select_samples(candidates, "code", params, seed=0)
    select_samples(candidates, "code", params, seed=1)
    assert len([r for r in caplog.records if "is set but" in r.getMessage()]) == 1


def test_chain_warns_once_per_setting(tmp_path, make_config, caplog):
    """With two runs, the warning about a key of another strategy printed once at start and once more per
    selection task."""
    from iota2.cli import main

    config = make_config(chain={"last_step": "sampling"},
                         arg_train={"runs": 2, "sample_selection": {"strategy": "constant", "strategy.constant.nb": 50,
                                                                    "strategy.percent.p": 0.3}})
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress"]) == 0
    assert len([r for r in caplog.records if "is set but" in r.getMessage()]) == 1
