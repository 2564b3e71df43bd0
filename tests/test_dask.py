"""Reading and model selection on Dask workers give the local results.

Each test compares a run under ``joblib.parallel_config(backend="dask")``
with a ``distributed.Client`` of two in-process workers against the same run
on joblib's local backend.  Skipped when ``distributed`` is not installed
(``pip install sklearn-flowspectrum[dask]``).
"""

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    CaptureError,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    read_sessions,
)
from sklearn_flowspectrum import _sessions as sessions_module
from sklearn_flowspectrum.datasets import (
    load_sample_captures,
)
from tests import _pcaps as P
from tests.test_pipeline import sample_rows

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (the 'dask' extra)"
)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port and resource notices of dask
        with distributed.Client(
            processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as c:
            yield c


@pytest.fixture(scope="module")
def process_client():
    # Model selection runs on worker processes, as on a real cluster: fits
    # that run side by side in one process share torch's threads and its
    # global generator, and an embedder's fit is reproducible only with the
    # same number of torch threads (one per worker here, as in loky's).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as c,
        ):
            yield c


def _embedder(**kw):
    params = dict(
        max_epochs=1,
        batch_size=32,
        random_state=0,
        device="cpu",
        module__channels=(8, 4),
        module__mapper_hidden=(16,),
    )
    params.update(kw)
    return AMAESpectrumEmbedder(**params)


def _on_workers(client, function, *args, **kwargs):
    """``function(*args, **kwargs)`` with joblib's Dask backend, checking that
    the Client's workers did run tasks."""
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_config(backend="dask"):
            out = function(*args, **kwargs)
    assert tasks.data, "no task reached the Dask workers"
    return out


def test_read_sessions_on_dask_equals_local(client):
    captures = load_sample_captures()
    labels = list(captures.target)
    local, local_report = read_sessions(
        captures.filenames, labels, n_jobs=2, return_report=True
    )
    dask_table, dask_report = _on_workers(
        client,
        read_sessions,
        captures.filenames,
        labels,
        n_jobs=-1,
        return_report=True,
    )
    pd.testing.assert_frame_equal(local, dask_table)
    pd.testing.assert_frame_equal(local_report, dask_report)
    assert local.attrs == dask_table.attrs


def test_n_jobs_none_follows_the_parallel_config(client):
    captures = load_sample_captures()
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_config(backend="dask", n_jobs=-1):
            table = read_sessions(captures.filenames)
    assert tasks.data, "n_jobs=None did not follow parallel_config(n_jobs=-1)"
    pd.testing.assert_frame_equal(table, read_sessions(captures.filenames))


def test_a_file_a_worker_cannot_read_is_an_error_naming_it(
    client, tmp_path, monkeypatch
):
    ok = P.write_pcap(tmp_path / "ok.pcap", [P.eth(p) for p in P.tcp_conversation()])
    gone = str(tmp_path / "only-here.pcap")
    # The checks of this process pass (as for a file on its local disk that
    # the workers do not share); the worker opening it finds nothing.
    real_check = sessions_module._file_error
    monkeypatch.setattr(
        sessions_module,
        "_file_error",
        lambda name: None if name == gone else real_check(name),
    )
    with pytest.raises(CaptureError, match="only-here.pcap") as info:
        _on_workers(client, read_sessions, [str(ok), gone], n_jobs=-1)
    assert info.value.file == gone
    assert "every worker" in str(info.value)
    # With on_error="warn" the other files are read and the report says why.
    with pytest.warns(UserWarning, match="only-here.pcap"):
        table, report = _on_workers(
            client,
            read_sessions,
            [str(ok), gone],
            n_jobs=-1,
            on_error="warn",
            return_report=True,
        )
    assert set(table["file"]) == {str(ok)}
    assert "no such file" in report.loc[1, "error"]




def test_grid_search_on_dask_equals_local(process_client):
    X, y = sample_rows()

    def search():
        pipe = make_pipeline(
            PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier()
        )
        grid = GridSearchCV(
            pipe,
            {
                "pcapsessionvectorizer__mask": ["none", "safe"],
                "amaespectrumembedder__module__channels": [(8, 4), (4, 4)],
                "flowspectrumclassifier__bandwidth": [0.1],
            },
            cv=StratifiedKFold(2, shuffle=True, random_state=0),
            error_score="raise",
            n_jobs=-1,
        )
        return grid.fit(X, y)

    local = search()
    remote = _on_workers(process_client, search)
    for key in ("params", "mean_test_score", "split0_test_score", "rank_test_score"):
        np.testing.assert_array_equal(
            np.asarray(local.cv_results_[key]), np.asarray(remote.cv_results_[key])
        )
    np.testing.assert_array_equal(
        local.best_estimator_.predict(X), remote.best_estimator_.predict(X)
    )


def test_cross_validate_on_dask_equals_local(process_client):
    captures = load_sample_captures()
    sessions = read_sessions(captures.filenames, labels=list(captures.target))

    def run():
        pipe = make_pipeline(
            PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier()
        )
        return sk_cross_validate(
            pipe,
            sessions,
            sessions["label"],
            groups=sessions["file"],
            cv=GroupKFold(n_splits=2),
            error_score="raise",
            n_jobs=-1,
        )

    local = run()
    remote = _on_workers(process_client, run)
    np.testing.assert_array_equal(local["test_score"], remote["test_score"])
