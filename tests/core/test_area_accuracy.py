"""Tests of iota2.core.area_accuracy: Olofsson et al. (2014) stratified estimators, class areas of real GeoTIFF
maps, the per-run CSV and the report task of the validation step."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import rasterio
from pyproj import Geod
from rasterio.transform import from_origin

from iota2.builders import validation
from iota2.core import area_accuracy
from iota2.core.area_accuracy import assess_map, map_class_areas, stratified_estimates
from iota2.core.errors import InputDataError
from iota2.core.layout import OutputLayout
from iota2.core.metrics import write_confusion_csv

# Olofsson et al. (2014), section 5 (Tables 8 and 9): four classes, a 30 m Landsat map of 10 000 000 pixels.
LABELS = [1, 2, 3, 4]
NAMES = {1: "Deforestation", 2: "Forest gain", 3: "Stable forest", 4: "Stable non-forest"}
PAPER_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
PAPER_HA_PER_PIXEL = 0.09  # 30 m x 30 m
# the sample counts of Table 8, rows = map, columns = reference (the paper's orientation)
PAPER_SAMPLE = np.array([[66, 0, 5, 4],
                         [0, 55, 8, 12],
                         [1, 0, 153, 11],
                         [2, 1, 9, 313]])
# iota2's confusion matrices have the reference on the rows
PAPER_CONFUSION = PAPER_SAMPLE.T

# Expected values. Stated in the paper's text (section 5) and checked here at its precision: the areas and 95 %
# intervals 21 158 +- 6 158, 11 686 +- 3 756, 285 770 +- 15 510 and 581 386 +- 16 282 ha; OA 0.95 +- 0.02,
# UA 0.88 +- 0.07, 0.73 +- 0.10, 0.93 +- 0.04, 0.96 +- 0.02; PA 0.75 +- 0.21, 0.85 +- 0.25, 0.93 +- 0.03,
# 0.96 +- 0.02. The third decimals below were derived by hand from the paper's equations (eq. 1-12, with 1.96) and
# agree with every one of those stated figures.
AREA_HA = [21_157.762, 11_686.154, 285_769.930, 581_386.154]
AREA_HA_CI = [6_157.634, 3_755.826, 15_509.836, 16_281.656]
AREA_PROPORTION = [0.024, 0.013, 0.318, 0.646]
AREA_PROPORTION_CI = [0.007, 0.004, 0.017, 0.018]
OA, OA_CI = 0.947, 0.018
UA = [0.880, 0.733, 0.927, 0.963]
UA_CI = [0.074, 0.101, 0.040, 0.021]
PA = [0.749, 0.847, 0.935, 0.962]
PA_CI = [0.213, 0.254, 0.034, 0.018]
# Table 9: estimated area proportions p_ij (rows = map, columns = reference), 4 decimals in the paper
TABLE_9 = [[0.0176, 0.0000, 0.0013, 0.0011],
           [0.0000, 0.0110, 0.0016, 0.0024],
           [0.0019, 0.0000, 0.2967, 0.0213],
           [0.0040, 0.0020, 0.0179, 0.6212]]


def _paper_estimates():
    return stratified_estimates(PAPER_CONFUSION, LABELS, PAPER_PIXELS * PAPER_HA_PER_PIXEL, PAPER_PIXELS)


def test_paper_worked_example_to_three_decimals():
    """Olofsson et al. (2014), section 5: every estimate and interval of the worked example."""
    result = _paper_estimates()
    np.testing.assert_allclose(result.area_ha, AREA_HA, atol=1e-3)
    np.testing.assert_allclose(result.area_ha_half_width, AREA_HA_CI, atol=1e-3)
    np.testing.assert_allclose(np.round(result.area_ha), [21_158, 11_686, 285_770, 581_386])
    np.testing.assert_allclose(np.round(result.area_ha_half_width), [6_158, 3_756, 15_510, 16_282])
    np.testing.assert_allclose(result.area_proportion, AREA_PROPORTION, atol=5e-4)
    np.testing.assert_allclose(result.area_proportion_half_width, AREA_PROPORTION_CI, atol=5e-4)
    assert result.overall_accuracy == pytest.approx(OA, abs=5e-4)
    assert result.overall_accuracy_half_width == pytest.approx(OA_CI, abs=5e-4)
    np.testing.assert_allclose(result.user_accuracy, UA, atol=5e-4)
    np.testing.assert_allclose(result.user_accuracy_half_width, UA_CI, atol=5e-4)
    np.testing.assert_allclose(result.producer_accuracy, PA, atol=5e-4)
    np.testing.assert_allclose(result.producer_accuracy_half_width, PA_CI, atol=5e-4)
    np.testing.assert_allclose(result.proportions, TABLE_9, atol=5e-5)
    assert result.total_area_ha == pytest.approx(900_000.0)
    np.testing.assert_array_equal(result.validation_pixels, [75, 75, 165, 325])
    assert result.unsampled == []


def test_orientation_matters():
    """The confusion matrix is taken as iota2's (rows = reference): passing the paper's orientation gives other
    figures, so a transposition slip cannot go unnoticed."""
    wrong = stratified_estimates(PAPER_SAMPLE, LABELS, PAPER_PIXELS * PAPER_HA_PER_PIXEL)
    assert abs(wrong.area_ha[0] - AREA_HA[0]) > 100


def test_intervals_are_cut_to_their_range():
    """Forest gain's producer's accuracy 0.847 +- 0.254 passes 1: its interval is cut at 1, the others stay."""
    result = _paper_estimates()
    low, high = result.interval("producer_accuracy")
    assert high[1] == 1.0 and low[1] == pytest.approx(PA[1] - PA_CI[1], abs=5e-4)
    assert high[0] == pytest.approx(PA[0] + PA_CI[0], abs=5e-4)
    low, high = result.interval("area_ha")
    assert np.all(low >= 0) and np.all(high <= result.total_area_ha)
    oa_low, oa_high = result.interval("overall_accuracy")
    assert oa_low == pytest.approx(OA - OA_CI, abs=1e-3) and oa_high == pytest.approx(OA + OA_CI, abs=1e-3)


def test_unsampled_mapped_class_makes_the_estimates_undefined():
    """A class mapped on some area without validation pixels: its stratum cannot be estimated, so the areas, OA
    and producer's accuracies are NaN (never a number that ignores that area); user's accuracies of the sampled
    classes stay."""
    confusion = np.zeros((3, 3))
    confusion[:2, :2] = [[40, 2], [3, 50]]
    result = stratified_estimates(confusion, [1, 2, 3], [10.0, 20.0, 5.0])
    assert result.unsampled == [3]
    assert np.all(np.isnan(result.area_ha)) and math.isnan(result.overall_accuracy)
    assert np.all(np.isnan(result.producer_accuracy))
    assert result.user_accuracy[0] == pytest.approx(40 / 43) and math.isnan(result.user_accuracy[2])


def test_class_absent_from_the_map_adds_nothing():
    """A ground-truth class never mapped (W = 0, no validation pixel mapped in it) is a stratum of zero weight:
    the estimates are those of the other strata, and the class's area comes from the others' omissions."""
    with_absent = np.array([[40, 2, 0], [3, 50, 0], [4, 1, 0]])  # reference 3 always mapped as 1 or 2
    result = stratified_estimates(with_absent, [1, 2, 3], [10.0, 30.0, 0.0])
    assert result.unsampled == []
    n1, n2 = 47, 53  # validation pixels mapped 1 and 2
    assert result.area_proportion[2] == pytest.approx(0.25 * 4 / n1 + 0.75 * 1 / n2)
    assert result.overall_accuracy == pytest.approx(0.25 * 40 / n1 + 0.75 * 50 / n2)
    assert result.producer_accuracy[2] == 0.0 and math.isnan(result.user_accuracy[2])


def test_stratum_of_one_validation_pixel_has_no_variance():
    """n_i. = 1: the variance divides by n_i. - 1 = 0, so every interval that uses the stratum is NaN."""
    result = stratified_estimates(np.array([[30, 0], [2, 1]]), [1, 2], [50.0, 50.0])
    assert result.validation_pixels[1] == 1
    assert math.isnan(result.user_accuracy_half_width[1]) and math.isnan(result.overall_accuracy_half_width)
    assert not math.isnan(result.area_ha[0]) and np.all(np.isnan(result.area_ha_half_width))


def test_rejects_bad_shapes_and_values():
    with pytest.raises(ValueError):
        stratified_estimates(np.eye(3), [1, 2], [1.0, 2.0])
    with pytest.raises(ValueError):
        stratified_estimates(np.eye(2), [1, 2], [1.0, -2.0])


# --------------------------------------------------------------------------------------------------
# class areas of a map
# --------------------------------------------------------------------------------------------------
def _write_map(path, labels, transform, crs="EPSG:32631", dtype="uint8", nodata=0):
    with rasterio.open(path, "w", driver="GTiff", width=labels.shape[1], height=labels.shape[0], count=1,
                       dtype=dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(labels.astype(dtype), 1)


def _paper_map(shape=(110, 100)):
    """The paper's map at 1/1000 of its pixels (20 / 15 / 320 / 645 of 1 000 ha... x 1000 each), shuffled, with
    a border of no-data rows: 10 000 classified pixels of 90 ha, i.e. the paper's 900 000 ha."""
    rng = np.random.default_rng(4)
    values = np.repeat(LABELS, PAPER_PIXELS // 1000)
    rng.shuffle(values)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[5:105] = values.reshape(100, 100)
    side = math.sqrt(900_000.0)  # 90 ha per pixel
    return labels, from_origin(500_000.0, 4_800_000.0, side, side)


def test_map_class_areas_counts_a_real_geotiff_by_bands_of_rows(tmp_path, monkeypatch):
    labels, transform = _paper_map()
    path = tmp_path / "map.tif"
    _write_map(path, labels, transform)
    pixels, area, every = map_class_areas(path, LABELS)
    assert every == LABELS
    np.testing.assert_array_equal(pixels, PAPER_PIXELS // 1000)  # the no-data border is not counted
    np.testing.assert_allclose(area, PAPER_PIXELS * PAPER_HA_PER_PIXEL, rtol=1e-9)
    monkeypatch.setattr(area_accuracy, "_READ_PIXELS", 250)  # bands of 2 rows (striped GeoTIFF: 1-row blocks)
    small_pixels, small_area, _ = map_class_areas(path, LABELS)
    np.testing.assert_array_equal(small_pixels, pixels)
    np.testing.assert_allclose(small_area, area)


def test_assess_map_reproduces_the_paper_from_a_geotiff(tmp_path):
    labels, transform = _paper_map()
    path = tmp_path / "map.tif"
    _write_map(path, labels, transform)
    result = assess_map(path, PAPER_CONFUSION, LABELS)
    np.testing.assert_allclose(result.area_ha, AREA_HA, atol=1e-3)
    np.testing.assert_allclose(result.area_ha_half_width, AREA_HA_CI, atol=1e-3)
    assert result.overall_accuracy == pytest.approx(OA, abs=5e-4)


def test_map_labels_outside_the_confusion_labels_are_kept(tmp_path):
    """A label of the map absent from the validation classes is appended, as a mapped class without validation
    pixels (so its area is not silently dropped from the strata)."""
    labels = np.array([[1, 1, 2, 7], [0, 2, 2, 7]], dtype=np.uint8)
    path = tmp_path / "map.tif"
    _write_map(path, labels, from_origin(0, 200, 10, 10))
    pixels, area, every = map_class_areas(path, [1, 2, 3])
    assert every == [1, 2, 3, 7]
    np.testing.assert_array_equal(pixels, [2, 3, 0, 2])
    np.testing.assert_allclose(area, [0.02, 0.03, 0.0, 0.02])
    result = assess_map(path, np.diag([5, 5, 0]), [1, 2, 3])
    assert result.unsampled == [7] and math.isnan(result.overall_accuracy)


def test_map_nodata_value_and_zero_are_not_counted(tmp_path):
    """Label 0 is no data in every map; a file declaring another nodata value (255, or -1 in int16) has those
    pixels left out too, and a negative value that is not the nodata value is refused."""
    for dtype, nodata in (("uint8", 255), ("int16", -1)):
        labels = np.array([[1, 1, nodata, 0], [2, 0, nodata, 2]])
        path = tmp_path / f"map_{dtype}.tif"
        _write_map(path, labels, from_origin(0, 20, 10, 10), dtype=dtype, nodata=nodata)
        pixels, _, every = map_class_areas(path, [1, 2])
        assert every == [1, 2] and pixels.tolist() == [2, 2]
    negative = tmp_path / "negative.tif"
    _write_map(negative, np.array([[1, -3]]), from_origin(0, 20, 10, 10), dtype="int16", nodata=0)
    with pytest.raises(InputDataError, match="negative.tif.*negative values"):
        map_class_areas(negative, [1])


def test_map_in_feet_and_geographic_coordinates(tmp_path):
    """Pixel areas come from the CRS: a projected CRS in US feet is converted to metres; in geographic coordinates
    each row's cells are measured on the ellipsoid (checked against pyproj's geodesic area of the cells)."""
    labels = np.ones((2, 2), dtype=np.uint8)
    feet = tmp_path / "feet.tif"
    _write_map(feet, labels, from_origin(0, 1000, 100, 100), crs="EPSG:2227")  # California zone 3, US survey feet
    _, area, _ = map_class_areas(feet, [1])
    assert area[0] == pytest.approx(4 * (100 * 1200 / 3937) ** 2 / 1e4)

    labels = np.zeros((61, 2), dtype=np.uint8)  # 1 degree cells: class 1 from 61 to 60 N, class 2 from 1 to 0 N
    labels[0], labels[60] = 1, 2
    geographic = tmp_path / "geographic.tif"
    _write_map(geographic, labels, from_origin(10.0, 61.0, 1.0, 1.0), crs="EPSG:4326")
    _, area, _ = map_class_areas(geographic, [1, 2])
    geod = Geod(ellps="WGS84")
    for index, (top, bottom) in enumerate(((61, 60), (1, 0))):
        along = np.linspace(10.0, 12.0, 2001)  # a parallel, densified: a geodesic edge would cut the cell
        expected, _ = geod.polygon_area_perimeter(np.r_[along, along[::-1]],
                                                  np.r_[np.full(along.size, bottom), np.full(along.size, top)])
        assert area[index] == pytest.approx(abs(expected) / 1e4, rel=1e-6)
    assert area[0] < 0.6 * area[1]


def test_map_bad_input(tmp_path):
    with pytest.raises(InputDataError, match="missing.tif.*does not exist"):
        map_class_areas(tmp_path / "missing.tif", [1])
    floats = tmp_path / "floats.tif"
    _write_map(floats, np.ones((2, 2)), from_origin(0, 20, 10, 10), dtype="float32")
    with pytest.raises(InputDataError, match="floats.tif.*integer labels"):
        map_class_areas(floats, [1])
    no_crs = tmp_path / "no_crs.tif"
    _write_map(no_crs, np.ones((2, 2)), from_origin(0, 20, 10, 10), crs=None)
    with pytest.raises(InputDataError, match="no_crs.tif.*no coordinate reference system"):
        map_class_areas(no_crs, [1])


# --------------------------------------------------------------------------------------------------
# CSV and the report task
# --------------------------------------------------------------------------------------------------
def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_csv_holds_the_estimates(tmp_path):
    path = tmp_path / "TMP" / "area_accuracy_seed_0.csv"
    area_accuracy.write_area_accuracy_csv(path, _paper_estimates(), NAMES)
    rows = _read_csv(path)
    assert [row["class"] for row in rows] == list(NAMES.values())
    assert list(rows[0])[:len(area_accuracy.CSV_COLUMNS)] == list(area_accuracy.CSV_COLUMNS)
    for index, row in enumerate(rows):
        assert float(row["area_ha"]) == pytest.approx(AREA_HA[index], abs=1e-3)
        assert float(row["area_ha_ci95"]) == pytest.approx(AREA_HA_CI[index], abs=1e-3)
        assert float(row["user_accuracy"]) == pytest.approx(UA[index], abs=5e-4)
        assert float(row["producer_accuracy_ci95"]) == pytest.approx(PA_CI[index], abs=5e-4)
        assert float(row["overall_accuracy"]) == pytest.approx(OA, abs=5e-4)
        assert int(row["map_pixels"]) == PAPER_PIXELS[index]
        assert [float(row[f"p_{label}"]) for label in LABELS] == pytest.approx(TABLE_9[index], abs=5e-5)
    assert float(rows[1]["producer_accuracy_high"]) == 1.0
    assert not list(path.parent.glob(".*tmp*"))


def test_report_task_writes_results_and_csv_per_run(tmp_path):
    """validation.report on a real output tree (two runs: final maps and confusion CSVs as the chain writes them):
    RESULTS.txt gets the area-adjusted part after the pixel metrics, and each run its CSV in final/TMP."""
    output = tmp_path / "out"
    layout = OutputLayout(str(output))
    labels, transform = _paper_map()
    nomenclature = tmp_path / "nomenclature.txt"
    nomenclature.write_text("".join(f"{name}:{label}\n" for label, name in NAMES.items()), encoding="utf-8")
    second = PAPER_CONFUSION + np.diag([4, 0, 0, 0])
    for run, confusion in enumerate((PAPER_CONFUSION, second)):
        layout.final_tmp.mkdir(parents=True, exist_ok=True)
        _write_map(layout.final_classification(run), labels, transform)
        write_confusion_csv(layout.run_confusion(run), confusion, LABELS)
    validation.report(2, str(output), str(nomenclature))

    text = layout.results.read_text(encoding="utf-8")
    assert text.index("Confusion matrix") < text.index("Area-adjusted accuracy (Olofsson et al. 2014)")
    assert text.count("OA : ") == 1  # the pixel metrics' line only: scripts reading 'OA : ' still find one
    assert "Run 0: final/Classif_Seed_0.tif, 900000.0 ha classified (10000 pixels), 640 validation pixels" in text
    assert "Overall accuracy (area-adjusted) : 0.947 +- 0.018" in text
    assert "Mean over 2 runs" in text
    assert " 21157.8 +- 6157.6 " in text and " 0.847 +0.153/-0.254 " in text
    first = _read_csv(validation.area_accuracy_csv(str(output), 0))
    assert [row["class"] for row in first] == list(NAMES.values())
    assert float(first[0]["area_ha"]) == pytest.approx(AREA_HA[0], abs=1e-3)
    later = _read_csv(validation.area_accuracy_csv(str(output), 1))
    assert float(later[0]["user_accuracy"]) > float(first[0]["user_accuracy"])


def test_report_task_names_a_missing_final_map(tmp_path):
    output = tmp_path / "out"
    layout = OutputLayout(str(output))
    layout.final_tmp.mkdir(parents=True)
    write_confusion_csv(layout.run_confusion(0), PAPER_CONFUSION, LABELS)
    with pytest.raises(InputDataError, match="Classif_Seed_0.tif' does not exist"):
        validation.report(1, str(output))
    assert not layout.results.exists()
