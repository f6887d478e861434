"""Tests of iota2.core.metrics: confusion matrices, coefficients, multi-run summary and reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib import image as mpl_image
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from iota2.core import metrics
from iota2.core.errors import InputDataError

# Hand-worked example (rows = reference, columns = produced):
#
#            p1   p2   p3  | row sum
#      r1    50    3    2  |   55
#      r2     5   40    5  |   50
#      r3     0   10   35  |   45
#   column   55   53   42  |  N = 150
#
# trace = 50 + 40 + 35 = 125                 -> OA = 125 / 150 = 0.833333...
# sum(row * col) = 55*55 + 50*53 + 45*42 = 3025 + 2650 + 1890 = 7565
# OA * N^2 = 125 * 150 = 18750, N^2 = 22500  -> kappa = (18750 - 7565) / (22500 - 7565) = 11185 / 14935
# precision = diag / col = 50/55, 40/53, 35/42
# recall    = diag / row = 50/55, 40/50, 35/45
# F = 2PR/(P+R) = 2*diag/(row+col) = 100/110, 80/103, 70/87
HAND_MATRIX = np.array([[50, 3, 2], [5, 40, 5], [0, 10, 35]])
HAND_OA = 125 / 150
HAND_KAPPA = 11185 / 14935
HAND_PRECISION = [50 / 55, 40 / 53, 35 / 42]
HAND_RECALL = [50 / 55, 40 / 50, 35 / 45]
HAND_FSCORE = [100 / 110, 80 / 103, 70 / 87]


def _pixels_from_matrix(matrix, labels):
    """Reference / produced pixel vectors realising a given confusion matrix."""
    reference, produced = [], []
    for row, ref_label in enumerate(labels):
        for column, prod_label in enumerate(labels):
            reference += [ref_label] * int(matrix[row, column])
            produced += [prod_label] * int(matrix[row, column])
    return np.array(reference), np.array(produced)


# --------------------------------------------------------------------------------------------------
# confusion matrix
# --------------------------------------------------------------------------------------------------
def test_confusion_matrix_rebuilds_hand_example():
    labels = [10, 20, 30]
    reference, produced = _pixels_from_matrix(HAND_MATRIX, labels)
    rng = np.random.default_rng(0)
    permutation = rng.permutation(reference.size)
    result = metrics.confusion_matrix(reference[permutation], produced[permutation], labels)
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result, HAND_MATRIX)


@pytest.mark.parametrize("labels", [[1, 2, 5, 7], [7, 1, 5, 2], [211, 5, 36]])
def test_confusion_matrix_matches_sklearn(labels):
    rng = np.random.default_rng(42)
    pool = np.array(sorted(set(labels) | {0, 3, 9, 1000}))
    reference = rng.choice(pool, size=(300, 400))
    produced = rng.choice(pool, size=(300, 400))
    result = metrics.confusion_matrix(reference, produced, labels)

    flat_ref, flat_prod = reference.ravel(), produced.ravel()
    keep = np.isin(flat_ref, labels) & np.isin(flat_prod, labels)
    expected = sk_confusion_matrix(flat_ref[keep], flat_prod[keep], labels=labels)
    np.testing.assert_array_equal(result, expected)
    # values 0 and unknown labels really were present and ignored
    assert result.sum() == keep.sum() < flat_ref.size


def test_confusion_matrix_chunked_equals_single_pass(monkeypatch):
    rng = np.random.default_rng(3)
    reference = rng.integers(0, 6, size=50_001)
    produced = rng.integers(0, 6, size=50_001)
    labels = [1, 2, 3, 4, 5]
    whole = metrics.confusion_matrix(reference, produced, labels)
    monkeypatch.setattr(metrics, "_CHUNK_SIZE", 977)
    chunked = metrics.confusion_matrix(reference, produced, labels)
    np.testing.assert_array_equal(whole, chunked)


def test_confusion_matrix_float_input_with_nan_is_ignored():
    reference = np.array([1.0, 2.0, np.nan, 2.0, 1.5])
    produced = np.array([1.0, 1.0, 1.0, np.nan, 1.0])
    result = metrics.confusion_matrix(reference, produced, [1, 2])
    np.testing.assert_array_equal(result, [[1, 0], [1, 0]])


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="values"):
        metrics.confusion_matrix([1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match="> 0"):
        metrics.confusion_matrix([1, 2], [1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="duplicates"):
        metrics.confusion_matrix([1, 2], [1, 2], [1, 2, 1])


# --------------------------------------------------------------------------------------------------
# coefficients
# --------------------------------------------------------------------------------------------------
def test_coefficients_hand_example():
    coeffs = metrics.coefficients(HAND_MATRIX)
    assert coeffs["oa"] == pytest.approx(HAND_OA)
    assert coeffs["kappa"] == pytest.approx(HAND_KAPPA)
    assert coeffs["kappa"] == pytest.approx(0.748912, abs=1e-6)
    np.testing.assert_allclose(coeffs["precision"], HAND_PRECISION)
    np.testing.assert_allclose(coeffs["recall"], HAND_RECALL)
    np.testing.assert_allclose(coeffs["fscore"], HAND_FSCORE)


def test_kappa_matches_sklearn_on_random_pixels():
    rng = np.random.default_rng(7)
    reference = rng.integers(1, 5, size=5000)
    produced = np.where(rng.random(5000) < 0.7, reference, rng.integers(1, 5, size=5000))
    coeffs = metrics.coefficients(metrics.confusion_matrix(reference, produced, [1, 2, 3, 4]))
    assert coeffs["kappa"] == pytest.approx(cohen_kappa_score(reference, produced))
    assert coeffs["oa"] == pytest.approx(np.mean(reference == produced))


def test_coefficients_nan_for_class_never_produced():
    # class 3 is in the reference (2 pixels) but never produced: precision 0/0 -> NaN, recall 0/2 = 0,
    # F undefined -> NaN. Classes 1 and 2 stay defined.
    matrix = np.array([[5, 0, 0], [0, 5, 0], [2, 0, 0]])
    coeffs = metrics.coefficients(matrix)
    assert math.isnan(coeffs["precision"][2])
    assert coeffs["recall"][2] == 0.0
    assert math.isnan(coeffs["fscore"][2])
    assert coeffs["precision"][0] == pytest.approx(5 / 7)
    assert coeffs["oa"] == pytest.approx(10 / 12)
    assert not math.isnan(coeffs["kappa"])


def test_coefficients_other_undefined_cases():
    # precision = recall = 0 (class 2 produced once and present 3 times, never right): F = 0, not NaN
    coeffs = metrics.coefficients(np.array([[5, 1], [3, 0]]))
    assert coeffs["precision"][1] == 0.0 and coeffs["recall"][1] == 0.0 and coeffs["fscore"][1] == 0.0
    # a class absent from both reference and production: everything about it NaN
    coeffs = metrics.coefficients(np.array([[4, 1, 0], [2, 3, 0], [0, 0, 0]]))
    assert all(math.isnan(coeffs[key][2]) for key in ("precision", "recall", "fscore"))
    # single class: N^2 == sum(row * col) -> kappa undefined
    assert math.isnan(metrics.coefficients(np.array([[7, 0], [0, 0]]))["kappa"])
    # empty matrix
    empty = metrics.coefficients(np.zeros((2, 2)))
    assert math.isnan(empty["oa"]) and math.isnan(empty["kappa"])


# --------------------------------------------------------------------------------------------------
# multi-run summary
# --------------------------------------------------------------------------------------------------
def _three_runs():
    # 2 classes; run k: [[a, 10 - a], [0, 10]] with a = 6, 8, 10 -> OA = 0.8, 0.9, 1.0,
    # recall of class 1 = 0.6, 0.8, 1.0, precision of class 1 = 1 in every run.
    return [np.array([[a, 10 - a], [0, 10]]) for a in (6, 8, 10)]


def test_multi_run_interval_uses_runs_minus_one_degrees_of_freedom():
    summary = metrics.multi_run_summary(_three_runs())
    assert summary["runs"] == 3
    np.testing.assert_allclose(summary["mean_matrix"], [[8, 2], [0, 10]])

    oa_values = [0.8, 0.9, 1.0]
    low, high = stats.t.interval(0.95, len(oa_values) - 1, loc=np.mean(oa_values), scale=stats.sem(oa_values))
    assert summary["oa"]["mean"] == pytest.approx(0.9)
    assert summary["oa"]["half_width"] == pytest.approx((high - low) / 2)
    # t(0.975, df=2) = 4.302653, sem = 0.1 / sqrt(3)
    assert summary["oa"]["half_width"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    # iota2's quirk (df = classes - 1 = 1) would give a different, wider interval
    quirk_low, quirk_high = stats.t.interval(0.95, 1, loc=0.9, scale=stats.sem(oa_values))
    assert summary["oa"]["half_width"] != pytest.approx((quirk_high - quirk_low) / 2)

    kappas = [metrics.coefficients(m)["kappa"] for m in _three_runs()]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(kappas), scale=stats.sem(kappas))
    assert summary["kappa"]["mean"] == pytest.approx(np.mean(kappas))
    assert summary["kappa"]["half_width"] == pytest.approx((high - low) / 2)

    recall_1 = [0.6, 0.8, 1.0]
    low, high = stats.t.interval(0.95, 2, loc=0.8, scale=stats.sem(recall_1))
    assert summary["recall"]["mean"][0] == pytest.approx(0.8)
    assert summary["recall"]["half_width"][0] == pytest.approx((high - low) / 2)
    assert summary["precision"]["mean"][0] == pytest.approx(1.0)
    assert summary["precision"]["half_width"][0] == pytest.approx(0.0)
    precision_2 = [10 / 14, 10 / 12, 10 / 10]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(precision_2), scale=stats.sem(precision_2))
    assert summary["precision"]["half_width"][1] == pytest.approx((high - low) / 2)


def test_multi_run_single_run_has_no_half_width():
    summary = metrics.multi_run_summary([HAND_MATRIX])
    assert summary["oa"]["half_width"] is None
    assert summary["kappa"]["half_width"] is None
    assert summary["fscore"]["half_width"] is None
    assert summary["oa"]["mean"] == pytest.approx(HAND_OA)
    np.testing.assert_allclose(summary["recall"]["mean"], HAND_RECALL)


def test_multi_run_ignores_undefined_runs():
    # class 2 is never produced in run 1 (precision NaN), produced in runs 2 and 3
    runs = [np.array([[5, 0], [3, 0]]), np.array([[5, 1], [1, 3]]), np.array([[5, 0], [2, 2]])]
    summary = metrics.multi_run_summary(runs)
    defined = [3 / 4, 2 / 2]
    assert summary["precision"]["mean"][1] == pytest.approx(np.mean(defined))
    low, high = stats.t.interval(0.95, 1, loc=np.mean(defined), scale=stats.sem(defined))
    assert summary["precision"]["half_width"][1] == pytest.approx((high - low) / 2)
    # a value defined in a single run has a mean but no interval
    runs = [np.array([[5, 0], [3, 0]]), np.array([[5, 0], [1, 0]]), np.array([[5, 0], [2, 2]])]
    summary = metrics.multi_run_summary(runs)
    assert summary["precision"]["mean"][1] == pytest.approx(1.0)
    assert math.isnan(summary["precision"]["half_width"][1])


def test_multi_run_rejects_empty_or_mismatched():
    with pytest.raises(ValueError):
        metrics.multi_run_summary([])
    with pytest.raises(ValueError):
        metrics.multi_run_summary([np.eye(2), np.eye(3)])


# --------------------------------------------------------------------------------------------------
# OTB CSV
# --------------------------------------------------------------------------------------------------
def test_confusion_csv_round_trip(tmp_path):
    path = tmp_path / "sub" / "T31TCJ_seed_0.csv"
    labels = [11, 12, 211]
    metrics.write_confusion_csv(path, HAND_MATRIX, labels)
    lines = path.read_text().splitlines()
    assert lines[0] == "#Reference labels (rows):11,12,211"
    assert lines[1] == "#Produced labels (columns):11,12,211"
    assert lines[2] == "50,3,2"
    matrix, read_labels = metrics.read_confusion_csv(path)
    assert read_labels == labels
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, HAND_MATRIX)
    # no temporary file left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["T31TCJ_seed_0.csv"]


def test_confusion_csv_round_trip_float_matrix(tmp_path):
    path = tmp_path / "mean.csv"
    mean = np.array([[1.5, 0.25], [0.0, 3.0]])
    metrics.write_confusion_csv(path, mean, [1, 2])
    matrix, labels = metrics.read_confusion_csv(path)
    assert labels == [1, 2]
    np.testing.assert_array_equal(matrix, mean)


def test_read_confusion_csv_with_different_label_lists(tmp_path):
    # OTB lists only the labels it met: produced lacks 3, reference lacks 4
    path = tmp_path / "otb.csv"
    path.write_text("#Reference labels (rows):1,2,3\n#Produced labels (columns):1,2,4\n"
                    "5,1,0\n0,4,1\n2,0,3\n")
    matrix, labels = metrics.read_confusion_csv(path)
    assert labels == [1, 2, 3, 4]
    np.testing.assert_array_equal(matrix, [[5, 1, 0, 0], [0, 4, 0, 1], [2, 0, 0, 3], [0, 0, 0, 0]])


def test_read_confusion_csv_errors(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        metrics.read_confusion_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("#Reference labels (rows):1,2\n#Produced labels (columns):1,2\n1,2\n")
    with pytest.raises(InputDataError, match="shape"):
        metrics.read_confusion_csv(bad)


# --------------------------------------------------------------------------------------------------
# RESULTS.txt
# --------------------------------------------------------------------------------------------------
def _parse_results(text: str):
    lines = text.splitlines()
    values = {}
    for line in lines:
        for key in ("KAPPA", "OA"):
            if line.startswith(f"{key} : "):
                values[key] = line[len(key) + 3:].strip()
    header_index = next(i for i, line in enumerate(lines) if line.strip().startswith("Classes"))
    header = [cell.strip() for cell in lines[header_index].split("|")]
    classes = {}
    for line in lines[header_index + 2:]:
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split("|")]
        classes[cells[0]] = dict(zip(header[1:], cells[1:]))
    return lines, values, header, classes


def _value_and_half_width(text: str):
    parts = text.split("+-")
    value = float(parts[0])
    return value, (float(parts[1]) if len(parts) == 2 else None)


def test_results_txt_multi_run(tmp_path):
    labels = [11, 12, 31]
    names = {11: "ble", 12: "mais", 31: "foret"}
    runs = [HAND_MATRIX, HAND_MATRIX + np.array([[0, 2, 0], [0, 0, 4], [1, 0, 0]]),
            HAND_MATRIX + np.array([[3, 0, 0], [0, 5, 0], [0, 9, 0]])]
    path = tmp_path / "final" / "RESULTS.txt"
    metrics.write_results_txt(path, runs, labels, names)
    text = path.read_text()
    lines, values, header, classes = _parse_results(text)
    summary = metrics.multi_run_summary(runs)

    assert "#row = reference" in lines and "#col = production" in lines
    assert any("runs - 1 degrees of freedom" in line for line in lines)
    assert "Confusion matrix" in text
    oa, oa_half = _value_and_half_width(values["OA"])
    assert oa == pytest.approx(summary["oa"]["mean"], abs=5e-4)
    assert oa_half == pytest.approx(summary["oa"]["half_width"], abs=5e-4)
    assert oa_half > 0
    kappa, kappa_half = _value_and_half_width(values["KAPPA"])
    assert kappa == pytest.approx(summary["kappa"]["mean"], abs=5e-4)
    assert kappa_half == pytest.approx(summary["kappa"]["half_width"], abs=5e-4)

    assert header == ["Classes", "Precision mean", "Recall mean", "F-score mean", "Confusion max"]
    assert list(classes) == ["ble", "mais", "foret"]
    for index, name in enumerate(["ble", "mais", "foret"]):
        for column, key in (("Precision mean", "precision"), ("Recall mean", "recall"),
                            ("F-score mean", "fscore")):
            mean, half = _value_and_half_width(classes[name][column])
            assert mean == pytest.approx(summary[key]["mean"][index], abs=5e-4)
            assert half == pytest.approx(summary[key]["half_width"][index], abs=5e-4)
    # mean row of "foret": [1/3, 10+3, 35] -> produced foret, mais, ble
    assert classes["foret"]["Confusion max"] == "foret, mais, ble"
    assert classes["ble"]["Confusion max"] == "ble, mais, foret"

    # the mean matrix: header with the names, each row = name | 3 values | name
    matrix_rows = [line for line in lines if line.count("|") == 4
                   and line.split("|")[0].strip() in names.values()
                   and line.split("|")[0].strip() == line.split("|")[-1].strip()]
    assert len(matrix_rows) == 3
    first = [cell.strip() for cell in matrix_rows[0].split("|")]
    assert first[0] == first[-1] == "ble"
    np.testing.assert_allclose([float(v) for v in first[1:4]], summary["mean_matrix"][0], atol=5e-3)
    assert first[1] == f"{summary['mean_matrix'][0, 0]:.2f}"
    widths = {len(cell) for cell in matrix_rows[0].split("|")}
    assert len(widths) == 1  # fixed-width cells


def test_results_txt_single_run_without_interval(tmp_path):
    path = tmp_path / "RESULTS.txt"
    metrics.write_results_txt(path, HAND_MATRIX, [1, 2, 3], ["wheat", "maize", "forest"])
    _, values, _, classes = _parse_results(path.read_text())
    assert values["OA"] == f"{HAND_OA:.3f}"
    assert values["KAPPA"] == f"{HAND_KAPPA:.3f}"
    assert classes["maize"]["Precision mean"] == f"{HAND_PRECISION[1]:.3f}"
    assert classes["maize"]["Recall mean"] == f"{HAND_RECALL[1]:.3f}"
    assert classes["forest"]["F-score mean"] == f"{HAND_FSCORE[2]:.3f}"
    body = path.read_text().split("Confusion matrix")[1]
    assert "+-" not in body


def test_results_txt_prints_nan_for_class_never_produced(tmp_path):
    path = tmp_path / "RESULTS.txt"
    matrix = np.array([[5, 0, 0], [0, 5, 0], [2, 0, 0]])
    metrics.write_results_txt(path, [matrix], [1, 2, 3], {1: "a", 2: "b"})  # 3 has no name
    _, _, _, classes = _parse_results(path.read_text())
    assert classes["3"]["Precision mean"] == "nan"
    assert classes["3"]["Recall mean"] == "0.000"
    assert classes["3"]["F-score mean"] == "nan"
    assert classes["3"]["Confusion max"] == "a"
    assert "-1000" not in path.read_text()


def test_results_txt_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError):
        metrics.write_results_txt(tmp_path / "R.txt", [HAND_MATRIX], [1, 2], None)
    assert not (tmp_path / "R.txt").exists()


def test_results_txt_is_english_only(tmp_path):
    path = tmp_path / "RESULTS.txt"
    metrics.write_results_txt(path, [HAND_MATRIX, HAND_MATRIX.T], [1, 2, 3], ["wheat", "maize", "forest"])
    text = path.read_text()
    for french in ("Matrice", "Rappel", "moyenne", "Classe "):
        assert french not in text
    assert "Confusion matrix" in text and "Recall mean" in text


def _two_runs_near_one():
    """Two runs whose OA (0.99 and 0.95) and class-1 recall give a mean +- 95 % half-width beyond 1: with two
    runs t(0.975, 1) = 12.7, so h = 12.7 * 0.0283 / sqrt(2) = 0.254."""
    first = np.array([[99, 1], [0, 100]])
    second = np.array([[95, 5], [5, 95]])
    return [first, second]


def test_multi_run_interval_is_cut_to_the_range_of_the_coefficient():
    summary = metrics.multi_run_summary(_two_runs_near_one())
    oa = summary["oa"]
    assert oa["mean"] + oa["half_width"] > 1.0  # the raw Student-t interval passes 1
    assert oa["high"] == 1.0
    assert oa["low"] == pytest.approx(oa["mean"] - oa["half_width"])
    assert np.all(summary["recall"]["high"] <= 1.0) and np.all(summary["precision"]["low"] >= 0.0)
    kappa = summary["kappa"]
    assert kappa["mean"] + kappa["half_width"] > 1.0 and kappa["high"] == 1.0
    assert kappa["low"] >= -1.0
    single = metrics.multi_run_summary([HAND_MATRIX])
    assert single["oa"]["low"] is None and single["oa"]["high"] is None


def test_results_txt_never_prints_an_interval_beyond_its_range(tmp_path):
    path = tmp_path / "RESULTS.txt"
    metrics.write_results_txt(path, _two_runs_near_one(), [1, 2], ["wheat", "maize"])
    text = path.read_text()
    _, values, _, classes = _parse_results(text)
    summary = metrics.multi_run_summary(_two_runs_near_one())
    oa = summary["oa"]
    up = 1.0 - oa["mean"]
    assert values["OA"] == f"{oa['mean']:.3f} +{up:.3f}/-{oa['half_width']:.3f}"
    printed = [(values["OA"], 0.0), (values["KAPPA"], -1.0)] + [
        (cell, 0.0) for row in classes.values() for key, cell in row.items() if key != "Confusion max"]
    for cell, bottom in printed:
        mean, _, interval = cell.partition(" ")
        if interval.startswith("+-"):
            low = float(mean) - float(interval[2:])
            high = float(mean) + float(interval[2:])
        else:
            plus, minus = interval.split("/")
            low, high = float(mean) + float(minus), float(mean) + float(plus)
        assert bottom - 1e-9 <= low and high <= 1.0 + 1e-9, cell
    assert "cut to [0, 1]" in text


# --------------------------------------------------------------------------------------------------
# RESULTS.txt: area-adjusted accuracy
# --------------------------------------------------------------------------------------------------
# Olofsson et al. (2014), section 5: map pixels of the four classes at 30 m and the sample counts (rows = map);
# iota2's confusion matrices have the reference on the rows, hence the transposition.
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
OLOFSSON_CONFUSION = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]).T
OLOFSSON_NAMES = {1: "Deforestation", 2: "Forest gain", 3: "Stable forest", 4: "Stable non-forest"}


def _olofsson(confusion=OLOFSSON_CONFUSION):
    from iota2.core.area_accuracy import stratified_estimates

    result = stratified_estimates(confusion, [1, 2, 3, 4], OLOFSSON_PIXELS * 0.09, OLOFSSON_PIXELS)
    result.map_path = "final/Classif_Seed_0.tif"
    return result


def _area_tables(text: str) -> list[dict]:
    """Each table of the area-adjusted part as ``{class: {column: cell}}``, with its ``Overall accuracy`` line."""
    part = text.split("Area-adjusted accuracy (Olofsson et al. 2014)")[1].splitlines()
    tables = []
    for index, line in enumerate(part):
        if line.strip().startswith("Classes"):
            header = [cell.strip() for cell in line.split("|")]
            rows, position = {}, index + 2
            while part[position].strip():
                cells = [cell.strip() for cell in part[position].split("|")]
                rows[cells[0]] = dict(zip(header[1:], cells[1:]))
                position += 1
            overall = part[position + 1]
            assert overall.startswith("Overall accuracy (area-adjusted) : ")
            tables.append({"rows": rows, "overall": overall.split(" : ")[1]})
    return tables


def _interval(cell: str):
    """``(estimate, low, high)`` of ``e +- h`` or ``e +up/-down``."""
    estimate, _, interval = cell.partition(" ")
    if interval.startswith("+-"):
        half = float(interval[2:])
        return float(estimate), float(estimate) - half, float(estimate) + half
    plus, minus = interval.split("/")
    return float(estimate), float(estimate) + float(minus), float(estimate) + float(plus)


def test_results_txt_area_adjusted_part_after_the_pixel_metrics(tmp_path):
    path = tmp_path / "RESULTS.txt"
    runs = [OLOFSSON_CONFUSION, OLOFSSON_CONFUSION + np.diag([4, 0, 0, 0])]
    metrics.write_results_txt(path, runs, [1, 2, 3, 4], OLOFSSON_NAMES,
                              area_accuracy=[_olofsson(matrix) for matrix in runs])
    text = path.read_text()
    assert text.index("Recall mean") < text.index("Area-adjusted accuracy (Olofsson et al. 2014)")
    assert text.count("OA : ") == 1 and "stratified random sample" in text and "indicative" in text
    lines, values, header, classes = _parse_results(text.split("*********** Area-adjusted")[0])
    assert list(classes) == list(OLOFSSON_NAMES.values())  # the pixel metrics are unchanged
    first, second, mean = _area_tables(text)
    assert list(first["rows"]) == list(OLOFSSON_NAMES.values())
    assert first["overall"] == "0.947 +- 0.018"
    deforestation = first["rows"]["Deforestation"]
    assert deforestation["Mapped area (ha)"] == "18000.0"
    assert deforestation["Adjusted area (ha)"] == "21157.8 +- 6157.6"
    assert deforestation["Adjusted area (proportion)"] == "0.024 +- 0.007"
    assert deforestation["User's accuracy"] == "0.880 +- 0.074"
    assert deforestation["Producer's accuracy"] == "0.749 +- 0.213"
    # forest gain's producer's accuracy 0.847 +- 0.254 would pass 1: cut and marked
    assert first["rows"]["Forest gain"]["Producer's accuracy"] == "0.847 +0.153/-0.254"
    for table in (first, second):
        for row in table["rows"].values():
            for column in ("Adjusted area (proportion)", "User's accuracy", "Producer's accuracy"):
                _, low, high = _interval(row[column])
                assert -1e-9 <= low and high <= 1.0 + 1e-9, row[column]
            _, low, high = _interval(row["Adjusted area (ha)"])
            assert low >= 0 and high <= 900_000.0
    # the mean over runs: each run's estimate averaged, no interval
    later = _olofsson(runs[1])
    assert mean["rows"]["Deforestation"]["User's accuracy"] == f"{(0.88 + later.user_accuracy[0]) / 2:.3f}"
    assert mean["rows"]["Deforestation"]["Adjusted area (ha)"] == f"{(21157.762 + later.area_ha[0]) / 2:.1f}"
    assert "Mean over 2 runs" in text and "+-" not in mean["overall"]


def test_results_txt_area_part_names_classes_mapped_without_validation_pixels(tmp_path):
    from iota2.core.area_accuracy import stratified_estimates

    path = tmp_path / "RESULTS.txt"
    confusion = np.array([[40, 2, 0], [3, 50, 0], [0, 0, 0]])
    result = stratified_estimates(confusion, [1, 2, 3], [10.0, 20.0, 5.0], [10, 20, 5])
    metrics.write_results_txt(path, [confusion], [1, 2, 3], {1: "wheat", 2: "maize", 3: "forest"},
                              area_accuracy=[result])
    text = path.read_text()
    assert "classes mapped without any validation pixel: forest" in text
    (table,) = _area_tables(text)
    assert table["overall"] == "nan +- nan"
    assert table["rows"]["wheat"]["Adjusted area (ha)"] == "nan +- nan"
    assert table["rows"]["wheat"]["User's accuracy"] == "0.930 +0.070/-0.077"  # 40 / 43, its stratum sampled


def test_results_txt_without_area_accuracy_has_no_such_part(tmp_path):
    path = tmp_path / "RESULTS.txt"
    metrics.write_results_txt(path, [HAND_MATRIX], [1, 2, 3])
    assert "Olofsson" not in path.read_text()


# --------------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [3, 25])
def test_plot_confusion_matrix_writes_png(tmp_path, n_classes):
    rng = np.random.default_rng(n_classes)
    matrix = rng.integers(0, 50, size=(n_classes, n_classes)) + np.diag(rng.integers(100, 1000, n_classes))
    matrix[-1, :] = 0  # one class absent from the reference (NaN recall) must not break the figure
    labels = list(range(1, n_classes + 1))
    names = {label: f"class_{label}_name" for label in labels}
    path = tmp_path / "Confusion_Matrix_Classif_Seed_0.png"
    metrics.plot_confusion_matrix(path, matrix, labels, names, "Classif_Seed_0")
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpl_image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 0 and pixels.shape[1] > 0
    if n_classes == 25:
        assert pixels.shape[0] >= 1500 and pixels.shape[1] >= 1500  # grows with the class count
    assert pixels[..., :3].std() > 0  # not a blank image
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
