import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from include import gaitpdb
from include.errors import BadInput
from include.estimators import ESTIMATORS, KNN, estimator_named
from include.records import Recipe
from include.training import (
    TrainingDataError,
    Windows,
    classification_metrics,
    grouped_folds,
    load_verified,
    recipe_cv,
    select_value,
    serialize,
    subject_level,
    train_and_evaluate,
)
from include.windowing import recording_windows

K_GRID = (1, 3, 5, 9)


@pytest.fixture(scope="module")
def sample_windows() -> Windows:
    rows = []
    for recording_id, data in gaitpdb.iter_recordings(gaitpdb.SAMPLE_DIR):
        rows.extend(recording_windows(recording_id, data, 100))
    return Windows.from_rows(rows, "means")


@pytest.fixture(scope="module")
def evaluation(sample_windows):
    return train_and_evaluate(KNN(), sample_windows, "means", K_GRID, n_splits=3, bv_rounds=3)


def test_counts(sample_windows):
    counts = sample_windows.counts()
    assert counts.windows == 130 and counts.recordings == 13 and counts.subjects == 12
    assert (counts.subjects_per_class.control, counts.subjects_per_class.parkinson) == (6, 6)


def test_report_has_window_and_subject_level_honest_figures(evaluation, sample_windows):
    honest = evaluation.evaluation.subject_grouped_cv
    leaky = evaluation.evaluation.leaky_random_split
    for metrics in (honest.window, honest.subject, leaky):
        assert metrics.tp + metrics.tn + metrics.fp + metrics.fn == metrics.n
        assert 0 <= metrics.accuracy <= 1 and 0 <= metrics.roc_auc <= 1
        assert set(metrics.confusion_matrix) == {"true_control", "true_parkinson"}
    assert honest.window.n == 130 and honest.subject.n == 12 and honest.subject.subjects == 12 and honest.folds == 3
    assert len(honest.chosen_per_fold) == 3 and set(honest.chosen_per_fold) <= set(K_GRID)
    assert "leaky" in leaky.note
    majority = evaluation.evaluation.majority_class
    assert majority.subject_accuracy == 0.5 and majority.window_accuracy == pytest.approx(70 / 130)
    bv = evaluation.evaluation.bias_variance
    assert bv.rounds == 3 and bv.loss >= 0 and bv.variance >= 0
    info = evaluation.model_info
    assert info.estimator == "knn" and info.hyperparameter == "k" and tuple(info.grid) == K_GRID
    assert info.params["k"] in K_GRID and str(info).startswith(f"knn k={info.params['k']} (nested CV over")
    assert evaluation.gate_score == honest.subject.roc_auc
    assert evaluation.data.fingerprint == sample_windows.fingerprint() and len(evaluation.data.recording_ids) == 13
    assert evaluation.probability.shape == (130,)
    assert evaluation.model.predict(sample_windows.X[:5]).shape == (5,)


def test_subject_probability_is_mean_of_its_windows():
    ids, y, p = subject_level(np.array(["b", "a", "b", "a"]), np.array([1, 0, 1, 0]), np.array([0.2, 0.4, 0.6, 0.0]))
    assert ids.tolist() == ["a", "b"] and y.tolist() == [0, 1] and p.tolist() == pytest.approx([0.2, 0.4])


@pytest.mark.parametrize("estimator", ESTIMATORS.values(), ids=list(ESTIMATORS))
def test_grid_probabilities_equal_the_fitted_models(sample_windows, estimator):
    """An estimator's one-pass probabilities for a grid are those of its model fitted per value (KNN: k above the
    training windows means all of them)."""
    X, y = sample_windows.X, sample_windows.y
    train, test = np.arange(0, 130, 2), np.arange(1, 130, 2)
    probabilities = estimator.probabilities(X[train], y[train], X[test], [1, 5, 9, 500])
    assert sorted(probabilities) == [1, 5, 9, 500]
    for value, probability in probabilities.items():
        expected = estimator.model(value, len(train)).fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        assert np.allclose(probability, expected)


def test_an_unknown_estimator_is_bad_input():
    assert estimator_named("knn").name == "knn"
    with pytest.raises(BadInput, match="unknown estimator 'svm': expected one of"):
        estimator_named("svm")


def test_k_is_chosen_without_the_test_subjects(sample_windows, monkeypatch):
    """Nested CV: select_value only ever sees the outer fold's training subjects."""
    import include.training as training

    seen = []
    original = training.select_value

    def spy(estimator, X, y, subjects, *args, **kwargs):
        seen.append(set(subjects.tolist()))
        return original(estimator, X, y, subjects, *args, **kwargs)

    monkeypatch.setattr(training, "select_value", spy)
    result = training.nested_grouped_cv(KNN(), sample_windows, K_GRID, 3, seed=1)
    assert len(seen) == len(result["folds"]) == 3, "the spy must have seen one k selection per outer fold"
    for (_train, test), subjects in zip(result["folds"], seen):
        assert subjects and not subjects & set(sample_windows.subjects[test].tolist())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 12)), min_size=4, max_size=40),
       st.integers(2, 6), st.integers(0, 10_000))
def test_grouped_folds_never_share_a_subject(subjects_spec, n_splits, seed):
    """Property: for any subjects (each with one label and some windows), no subject is on both sides."""
    labels = [label for label, _ in subjects_spec]
    assume(min(labels.count(0), labels.count(1)) >= 2)
    y = np.repeat(labels, [n for _, n in subjects_spec])
    subjects = np.repeat([f"s{i}" for i in range(len(subjects_spec))], [n for _, n in subjects_spec])
    folds = grouped_folds(y, subjects, n_splits, seed)
    assert 2 <= len(folds) <= n_splits
    covered = np.concatenate([test for _train, test in folds])
    assert sorted(covered.tolist()) == list(range(len(y)))
    for train, test in folds:
        assert not set(subjects[train].tolist()) & set(subjects[test].tolist())


def test_select_k_prefers_smaller_k_on_ties():
    X = np.vstack([np.zeros((20, 2)), np.ones((20, 2)) * 10]) + np.random.default_rng(0).normal(0, 0.01, (40, 2))
    y = np.repeat([0, 1], 20)
    subjects = np.repeat([f"s{i}" for i in range(8)], 5)
    k, scores = select_value(KNN(), X, y, subjects, (9, 3, 5), seed=0)
    assert all(value == 1.0 for value in scores.values()) and k == 3


def test_recipe_cv_is_deterministic_on_the_same_folds(sample_windows):
    folds = grouped_folds(sample_windows.y, sample_windows.subjects, 3, 42)
    recipe = Recipe(feature_set="means", window_size=100, estimator="knn", params={"k": 5})
    first, second = (recipe_cv(KNN(), recipe, sample_windows, folds) for _ in range(2))
    assert np.array_equal(first, second) and first.shape == (130,)


def test_fingerprint_identifies_the_recordings(sample_windows):
    other = sample_windows.recordings != sample_windows.recordings[0]
    fewer = Windows(sample_windows.X[other], sample_windows.y[other], sample_windows.subjects[other],
                    sample_windows.recordings[other], sample_windows.features)
    assert fewer.fingerprint() != sample_windows.fingerprint()
    half = np.arange(0, 130, 2)  # other windows of the same recordings (e.g. another window size)
    same = Windows(sample_windows.X[half], sample_windows.y[half], sample_windows.subjects[half],
                   sample_windows.recordings[half], sample_windows.features)
    assert same.fingerprint() == sample_windows.fingerprint()


def test_folds_depend_on_subjects_not_on_windows(sample_windows):
    half = np.arange(0, 130, 2)
    all_windows = grouped_folds(sample_windows.y, sample_windows.subjects, 3, 7)
    fewer_windows = grouped_folds(sample_windows.y[half], sample_windows.subjects[half], 3, 7)
    for (_, test_all), (_, test_half) in zip(all_windows, fewer_windows):
        assert set(sample_windows.subjects[test_all]) == set(sample_windows.subjects[half][test_half])


def test_refuses_one_sided_data(sample_windows):
    only_patients = sample_windows.y == 1
    data = Windows(sample_windows.X[only_patients], sample_windows.y[only_patients],
                   sample_windows.subjects[only_patients], sample_windows.recordings[only_patients],
                   sample_windows.features)
    with pytest.raises(TrainingDataError, match="subjects per class"):
        train_and_evaluate(KNN(), data, "means", K_GRID)


def test_metrics_known_values():
    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.2]))
    assert (metrics.tp, metrics.tn, metrics.fp, metrics.fn) == (1, 1, 1, 1)
    assert metrics.accuracy == 0.5 and metrics.confusion_matrix == {"true_control": [1, 1], "true_parkinson": [1, 1]}


def test_tampered_artifact_is_refused(evaluation, sample_windows):
    blob, sha = serialize(evaluation.model)
    assert load_verified(blob, sha).predict(sample_windows.X[:3]).shape == (3,)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ValueError, match="refusing"):
        load_verified(tampered, sha)


def test_bias_variance_uses_a_bounded_seeded_sample_of_the_hold_out(sample_windows, monkeypatch):
    from include import training

    full = training.bias_variance(KNN(), 3, sample_windows, rounds=2, seed=1)
    monkeypatch.setattr(training, "BIAS_VARIANCE_MAX_TEST_WINDOWS", 10)
    capped = training.bias_variance(KNN(), 3, sample_windows, rounds=2, seed=1)
    assert full.holdout_windows == full.holdout_windows_available > 10
    assert capped.holdout_windows == 10 and capped.holdout_windows_available == full.holdout_windows
    assert capped == training.bias_variance(KNN(), 3, sample_windows, rounds=2, seed=1)


def test_untrainable_says_why_and_trainable_data_passes(sample_windows):
    from include.training import untrainable

    assert untrainable(sample_windows) is None
    one_subject_per_class = np.isin(sample_windows.subjects, ["GaCo01", "GaPt03"])
    data = Windows(sample_windows.X[one_subject_per_class], sample_windows.y[one_subject_per_class],
                   sample_windows.subjects[one_subject_per_class], sample_windows.recordings[one_subject_per_class],
                   sample_windows.features)
    assert untrainable(data) == ("20 windows with 1 control and 1 Parkinson's subjects: subject-grouped "
                                 "evaluation needs at least 2 subjects per class")
    empty = Windows.from_rows([], "means")
    assert "0 windows with 0 control and 0 Parkinson's" in untrainable(empty)
