"""Tests of date grids and linear gap-filling."""

import numpy as np
import pytest

from iota2.core.timeseries import date_grid, day_numbers, days_between, gapfill_linear, parse_date


def test_parse_date_and_days_between():
    assert parse_date("20180511").isoformat() == "2018-05-11"
    assert parse_date(20180511) == parse_date("20180511")
    assert days_between("20180101", "20180111") == 10
    assert days_between("20180111", "20180101") == -10
    assert days_between("20160228", "20160301") == 2  # leap year
    with pytest.raises(ValueError):
        parse_date("2018-05-11")
    with pytest.raises(ValueError):
        parse_date("20181301")


def test_date_grid_end_included_only_on_grid():
    assert date_grid("20180101", "20180121", 10) == ["20180101", "20180111", "20180121"]
    assert date_grid("20180101", "20180125", 10) == ["20180101", "20180111", "20180121"]
    assert date_grid("20180101", "20180101", 10) == ["20180101"]
    assert date_grid("20160225", "20160302", 2) == ["20160225", "20160227", "20160229", "20160302"]
    assert date_grid(20181220, 20190110, 10) == ["20181220", "20181230", "20190109"]
    with pytest.raises(ValueError):
        date_grid("20180121", "20180101", 10)
    with pytest.raises(ValueError):
        date_grid("20180101", "20180121", 0)


def _cube(series, bands=1):
    """(T, bands, 1, 1) cube whose band k is (k + 1) * series."""
    series = np.asarray(series, dtype=np.float32)
    return np.stack([series * (band + 1) for band in range(bands)], axis=1)[:, :, None, None]


def test_gapfill_linear_between_valid_observations():
    dates = ["20180101", "20180111", "20180131"]  # days 0, 10, 30
    values = _cube([0.0, 999.0, 30.0], bands=2)
    invalid = np.array([False, True, False])[:, None, None]
    out = gapfill_linear(values, invalid, dates, ["20180101", "20180111", "20180121", "20180131"])
    assert out.shape == (4, 2, 1, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0, 0], [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(out[:, 1, 0, 0], [0.0, 20.0, 40.0, 60.0])


def test_gapfill_uses_day_differences_not_positions():
    dates = ["20180101", "20180102", "20180201"]  # days 0, 1, 31: the middle date is valid
    values = _cube([0.0, 100.0, 400.0])
    invalid = np.zeros((3, 1, 1), dtype=bool)
    out = gapfill_linear(values, invalid, dates, ["20180111"])  # day 10: between day 1 (100) and day 31 (400)
    assert out[0, 0, 0, 0] == pytest.approx(100.0 + 9.0 / 30.0 * 300.0)


def test_gapfill_holds_nearest_valid_value_outside_valid_range():
    dates = ["20180101", "20180111", "20180121", "20180131"]
    values = _cube([5.0, 10.0, 20.0, 7.0])
    invalid = np.array([True, False, False, True])[:, None, None]
    out = gapfill_linear(values, invalid, dates, ["20171201", "20180101", "20180106", "20180131", "20180301"])
    np.testing.assert_allclose(out[:, 0, 0, 0], [10.0, 10.0, 10.0, 20.0, 20.0])


def test_gapfill_pixel_without_valid_observation_is_zero():
    dates = ["20180101", "20180111"]
    values = np.full((2, 3, 1, 2), 50.0, dtype=np.float32)
    invalid = np.zeros((2, 1, 2), dtype=bool)
    invalid[:, 0, 1] = True
    out = gapfill_linear(values, invalid, dates, ["20180101", "20180106", "20180201"])
    assert np.all(out[:, :, 0, 1] == 0.0)
    assert np.all(out[:, :, 0, 0] == 50.0)


def test_gapfill_valid_dates_are_returned_unchanged():
    rng = np.random.default_rng(1)
    dates = ["20180101", "20180115", "20180203", "20180301"]
    values = rng.uniform(0, 10000, (4, 5, 6, 7)).astype(np.float32)
    invalid = np.zeros((4, 6, 7), dtype=bool)
    out = gapfill_linear(values, invalid, dates, dates)
    np.testing.assert_array_equal(out, values)


def _reference_gapfill(values, invalid, input_dates, output_dates):
    """Straightforward per-pixel implementation used to check the vectorised one."""
    in_days = day_numbers(input_dates).astype(float)
    out_days = day_numbers(output_dates).astype(float)
    n_dates, n_bands, rows, cols = values.shape
    result = np.zeros((len(out_days), n_bands, rows, cols))
    for row in range(rows):
        for col in range(cols):
            good = np.flatnonzero(~invalid[:, row, col])
            if good.size == 0:
                continue
            for band in range(n_bands):
                # np.interp holds the end values outside the valid range
                result[:, band, row, col] = np.interp(out_days, in_days[good], values[good, band, row, col])
    return result


def test_gapfill_matches_per_pixel_reference_on_random_cube():
    rng = np.random.default_rng(42)
    offsets = np.sort(rng.choice(np.arange(0, 365), size=9, replace=False))
    input_dates = [str(date) for date in np.datetime_as_string(np.datetime64("2018-01-01") + offsets).tolist()]
    input_dates = [date.replace("-", "") for date in input_dates]
    output_dates = date_grid("20171215", "20190110", 7)
    values = rng.uniform(-100, 8000, (9, 4, 13, 11)).astype(np.float32)
    invalid = rng.random((9, 13, 11)) < 0.45
    invalid[:, 0, 0] = True  # never seen
    invalid[:, 1, 1] = False  # always seen
    invalid[:, 2, 2] = True
    invalid[0, 2, 2] = False  # seen once, on the first date
    out = gapfill_linear(values, invalid, input_dates, output_dates)
    expected = _reference_gapfill(values, invalid, input_dates, output_dates)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-2)
    assert np.all(out[:, :, 0, 0] == 0.0)
    np.testing.assert_allclose(out[:, :, 2, 2], np.broadcast_to(values[0, :, 2, 2], (len(output_dates), 4)))


def test_gapfill_rejects_inconsistent_shapes():
    values = np.zeros((3, 2, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError):
        gapfill_linear(values, np.zeros((2, 4, 4), dtype=bool), ["20180101", "20180102", "20180103"], ["20180101"])
    with pytest.raises(ValueError):
        gapfill_linear(values, np.zeros((3, 4, 4), dtype=bool), ["20180101", "20180102"], ["20180101"])


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
def test_gapfill_compiled_kernel_gives_the_numpy_bits(dtype):
    """The numba kernel and the numpy version do the same float32 arithmetic: identical results, including
    output dates before, between and after the input dates, pixels never seen and pixels seen once."""
    from iota2.core.timeseries import _kernel

    assert _kernel() is not None, "numba is a dependency: the compiled kernel must load"
    rng = np.random.default_rng(7)
    offsets = np.sort(rng.choice(np.arange(0, 365), size=23, replace=False))
    input_dates = [(np.datetime64("2018-01-01") + int(o)).astype(str).replace("-", "") for o in offsets]
    output_dates = date_grid("20171201", "20190115", 9)[::-1] + input_dates  # any order, exact input days too
    values = rng.uniform(-2000, 12000, (23, 3, 37, 29)).astype(dtype)  # 1073 px: several blocks, a partial one
    invalid = rng.random((23, 37, 29)) < 0.5
    invalid[:, 0, :] = True  # a row never seen
    invalid[:, 1, :] = True
    invalid[5, 1, :] = False  # a row seen once
    compiled = gapfill_linear(values, invalid, input_dates, output_dates)
    plain = gapfill_linear(values, invalid, input_dates, output_dates, compiled=False)
    assert compiled.dtype == plain.dtype == np.float32
    np.testing.assert_array_equal(compiled, plain)
    assert np.all(compiled[:, :, 0, :] == 0.0)
    np.testing.assert_array_equal(compiled[:, :, 1, :],
                                  np.broadcast_to(values[5, :, 1, :].astype(np.float32), compiled[:, :, 1, :].shape))


def test_gapfill_compiled_kernel_reads_non_contiguous_input():
    rng = np.random.default_rng(3)
    dates = ["20180101", "20180111", "20180131", "20180305"]
    values = rng.uniform(0, 1, (4, 2, 40, 30)).astype(np.float32)[:, :, ::3, 1::2]
    invalid = (rng.random((4, 40, 30)) < 0.4)[:, ::3, 1::2]
    out = gapfill_linear(values, invalid, dates, ["20180120", "20180201"])
    expected = _reference_gapfill(values, invalid, dates, ["20180120", "20180201"])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_a_dask_worker_loads_the_gapfilling_kernel_at_start():
    """The workers' start script loads the compiled gap-filling, upsampling and overview kernels, so a worker's
    first chunk does not pay for them."""
    import subprocess
    import sys

    script = ("import iota2.core.worker_preload\n"
              "from iota2.core import raster, timeseries\n"
              "print(timeseries._kernel.cache_info().currsize, timeseries._kernel() is not None,\n"
              "      raster.upsample_kernel.cache_info().currsize, raster.upsample_kernel() is not None,\n"
              "      raster.overview_kernel.cache_info().currsize, raster.overview_kernel() is not None)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True", "1", "True", "1", "True"]


@pytest.mark.parametrize("warm, imported", [("1", "True"), ("0", "False")])
def test_a_dask_worker_warms_the_learner_up_only_for_a_run_that_learns(warm, imported):
    """A features map's workers (IOTA2_WARM_LEARNER=0, set by make_cluster) skip importing scikit-learn."""
    import os
    import subprocess
    import sys

    from iota2.core.scheduler import WARM_LEARNER_ENV

    script = "import sys\nimport iota2.core.worker_preload\nprint('sklearn.ensemble' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=os.environ | {WARM_LEARNER_ENV: warm})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [imported]
