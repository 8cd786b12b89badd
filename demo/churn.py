"""The churn team's training job: the seed's "deploy code" pattern (pattern 1), on synthetic data.

The seed called ``log_model(..., registered_model_name=...)``; with registry-watcher the training
job only logs, and the watcher registers what passes the gates. ``variant`` makes the runs the
demo and tests need: ``good``, ``shuffled`` (labels shuffled), ``no_recall`` (recall not logged),
``no_model`` (nothing logged under ``model``), ``extra_feature`` (one more input column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["orders_last_30d", "avg_delivery_delay_min", "complaints_90d", "discount_usage_rate",
            "tenure_days", "support_tickets_30d", "crisis_region", "app_sessions_7d"]
TRUSTED = ["sklearn.tree._tree.Tree"]


def customer_data(rows: int = 1500, seed: int = 7, label: bool = True) -> pd.DataFrame:
    """Synthetic ``customer_data.csv``: churn driven by delays, complaints and low engagement."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "orders_last_30d": rng.poisson(6, rows),
        "avg_delivery_delay_min": rng.gamma(2.0, 8.0, rows).round(1),
        "complaints_90d": rng.poisson(0.8, rows),
        "discount_usage_rate": rng.uniform(0, 1, rows).round(3),
        "tenure_days": rng.integers(10, 2000, rows),
        "support_tickets_30d": rng.poisson(0.5, rows),
        "crisis_region": rng.integers(0, 2, rows),
        "app_sessions_7d": rng.poisson(9, rows),
    })
    if label:
        score = (0.06 * df.avg_delivery_delay_min + 0.9 * df.complaints_90d + 1.2 * df.crisis_region
                 - 0.25 * df.orders_last_30d - 0.15 * df.app_sessions_7d - 0.001 * df.tenure_days)
        df["label"] = (score + rng.normal(0, 0.6, rows) > np.quantile(score, 0.8)).astype(int)
    return df


def requirements() -> list[str]:
    """Pinned requirements, given explicitly: MLflow's inference spawns a ~4 s subprocess per model."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "pandas")]


def train_run(experiment: str, variant: str = "good", rows: int = 1500, seed: int = 7,
              n_estimators: int = 20, run_name: str | None = None, end: bool = True,
              registered_model_name: str | None = None, serialization_format: str = "skops",
              tags: dict[str, str] | None = None, trusted_types: list[str] | None = None) -> str:
    """Train and log one run with the seed's pattern-1 code; returns the run id.

    ``registered_model_name`` is the seed's original argument (the run registers itself as it logs);
    ``serialization_format`` is the sklearn flavor's (skops, pickle, cloudpickle); ``tags`` are run tags;
    ``trusted_types`` replaces the ``skops_trusted_types`` written into the MLmodel file.
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import precision_score, recall_score
    from sklearn.model_selection import train_test_split

    df = customer_data(rows, seed)
    if variant == "extra_feature":
        df.insert(0, "customer_id_hash", np.random.default_rng(seed).integers(0, 10**6, len(df)))
    X = df.drop(columns=["label"])
    y = df["label"].sample(frac=1.0, random_state=seed).to_numpy() if variant == "shuffled" else df["label"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed, stratify=y)
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=run_name or f"code_pattern_training_{variant}", tags=tags)
    clf = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    clf.fit(X_train, y_train)
    predicted = clf.predict(X_test)
    mlflow.log_metric("accuracy", clf.score(X_test, y_test))
    if variant != "no_recall":
        mlflow.log_metric("recall", recall_score(y_test, predicted, zero_division=0))
    mlflow.log_metric("precision", precision_score(y_test, predicted, zero_division=0))
    mlflow.log_input(mlflow.data.from_pandas(X_train.assign(label=y_train), name="customer_data",
                                             targets="label"), context="training")
    if variant != "no_model":
        trusted = (trusted_types or TRUSTED) if serialization_format == "skops" else None
        mlflow.sklearn.log_model(clf, name="model", signature=infer_signature(X_train, predicted),
                                 serialization_format=serialization_format, skops_trusted_types=trusted,
                                 registered_model_name=registered_model_name, pip_requirements=requirements())
    if end:
        mlflow.end_run()
    return run.info.run_id
