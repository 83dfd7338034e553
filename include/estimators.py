"""The estimators a training recipe can name (Param `estimator`). Each tunes one integer hyperparameter by nested
subject-grouped CV over a grid (its own Param). Adding an estimator is one class here and one entry in
ESTIMATORS; training, the gate, the registry, the report and the trigger form follow from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from include.errors import BadInput

if TYPE_CHECKING:  # scikit-learn is imported where a model is built: the DAGs' Params read this module at parse time
    from sklearn.pipeline import Pipeline


class Estimator(Protocol):
    name: ClassVar[str]  # the recipe's `estimator`
    title: ClassVar[str]
    hyperparameter: ClassVar[str]  # the one tuned by nested CV
    grid_param: ClassVar[str]  # the DAG Param holding its grid
    default_grid: ClassVar[tuple[int, ...]]
    grid_maximum: ClassVar[int]

    def model(self, value: int, training_windows: int) -> Pipeline:
        """The unfitted model with this hyperparameter value, for this many training windows."""
        ...

    def probabilities(
        self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, values: Sequence[int]
    ) -> dict[int, np.ndarray]:
        """P(parkinson) on X_test of the model of each value, trained on X_train (one pass for the whole grid)."""
        ...

    def description(self) -> dict[str, str]:
        """What the report records of the model besides its hyperparameter."""
        ...


class KNN:
    """Scaled, uniform-weight k-nearest neighbours (the mission's classifier)."""

    name: ClassVar[str] = "knn"
    title: ClassVar[str] = "KNN neighbours (k)"
    hyperparameter: ClassVar[str] = "k"
    grid_param: ClassVar[str] = "knn_k_grid"
    default_grid: ClassVar[tuple[int, ...]] = (1, 3, 5, 9, 15, 25, 41, 61, 121, 241, 481)
    grid_maximum: ClassVar[int] = 1001

    def model(self, value: int, training_windows: int) -> Pipeline:
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        k = min(value, training_windows)  # k above the training windows means all of them
        return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=k))])

    def probabilities(
        self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, values: Sequence[int]
    ) -> dict[int, np.ndarray]:
        """Every k from one neighbour query (k above the training windows means all of them)."""
        from sklearn.neighbors import NearestNeighbors
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X_train)
        capped = {k: min(k, len(y_train)) for k in values}
        neighbours = NearestNeighbors(n_neighbors=max(capped.values())).fit(scaler.transform(X_train))
        index = neighbours.kneighbors(scaler.transform(X_test), return_distance=False)
        votes = np.cumsum(y_train[index], axis=1)
        return {k: votes[:, n - 1] / n for k, n in capped.items()}

    def description(self) -> dict[str, str]:
        return {"type": "KNeighborsClassifier", "weights": "uniform", "scaling": "StandardScaler"}


ESTIMATORS: dict[str, Estimator] = {estimator.name: estimator for estimator in (KNN(),)}
DEFAULT_ESTIMATOR = KNN.name


def estimator_named(name: str) -> Estimator:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise BadInput(f"unknown estimator {name!r}: expected one of {sorted(ESTIMATORS)}") from None
