import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from torch.utils.data import DataLoader
from upath import UPath

from kmerl.ingest import IngestConfig, ingest_source
from kmerl.leads import STANDARD_LEADS
from kmerl.signals import SignalStore
from kmerl.signals.torch_dataset import SignalDataset
from kmerl.sources import ChallengeSource, PtbXlSource


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    root = tmp_path_factory.mktemp("store")
    config = IngestConfig(workers=1, records_per_shard=100)
    ingest_source(PtbXlSource(name="ptbxl", root=shared_data / "ptbxl"), root, config)
    ingest_source(ChallengeSource(name="cinc2021", root=shared_data / "cinc2021"), root, config)
    return root


def test_signals_equal_the_source_in_standard_lead_order(store_root: Path, ptbxl_root: Path) -> None:
    store = SignalStore.open(store_root)
    assert len(store) == 605
    item = store[store.position("ptbxl/17")]
    raw = wfdb.rdrecord(str(ptbxl_root / "records100/00000/00017_lr"))
    order = [[n.upper() for n in raw.sig_name].index(lead.upper()) for lead in STANDARD_LEADS]
    np.testing.assert_allclose(item.signal, raw.p_signal[:, order].T, atol=1e-6)
    assert item.record_id == "ptbxl/17" and item.lead_mask.all()


def test_mmap_and_parquet_access_agree_in_random_order(store_root: Path) -> None:
    mapped = SignalStore.open(store_root)
    parquet = SignalStore.open(store_root, access="parquet")
    for position in np.random.default_rng(0).permutation(len(mapped))[:80]:
        np.testing.assert_array_equal(mapped.signal(int(position)), parquet.signal(int(position)))
    with pytest.raises(IndexError):
        mapped.signal(len(mapped))


def test_metadata_is_lazy_and_excludes_the_signal(store_root: Path) -> None:
    store = SignalStore.open(store_root, sources=["cinc2021"])
    frame = store.metadata().collect()
    assert "signal" not in frame.columns and frame.height == 105
    assert set(frame["split"]) <= {"train", "val", "test"}


def test_torch_loader_with_worker_processes(store_root: Path) -> None:
    store = SignalStore.open(store_root)
    restored = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(restored.signal(3), store.signal(3))
    loader = DataLoader(SignalDataset(store, positions=range(64)), batch_size=16, num_workers=2)
    batches = list(loader)
    assert [b["signal"].shape for b in batches] == [torch.Size([16, 12, 1000])] * 4
    assert all(torch.isfinite(b["signal"]).all() for b in batches)
    assert torch.cat([b["position"] for b in batches]).tolist() == list(range(64))


def test_a_store_on_an_fsspec_url_ingests_and_reads_back(tmp_path: Path, wfdb_samples_root: Path) -> None:
    """Object storage behaves like a folder: fsspec's in-memory file system stands in
    for s3:// here (one worker: the memory file system is per process)."""
    from kmerl.sources import WfdbFolderSource

    root = UPath("memory://kmerl-store-test/ecg_signals")
    manifest = ingest_source(WfdbFolderSource(name="samples", root=wfdb_samples_root), root, IngestConfig(workers=1))
    again = ingest_source(WfdbFolderSource(name="samples", root=wfdb_samples_root), root, IngestConfig(workers=1))
    assert manifest.ingested == 2 and again.version == manifest.version
    remote = SignalStore.open(root, cache_dir=tmp_path / "cache")
    local_root = tmp_path / "local"
    ingest_source(WfdbFolderSource(name="samples", root=wfdb_samples_root), local_root, IngestConfig(workers=1))
    local = SignalStore.open(local_root)
    assert remote.record_ids == local.record_ids
    for position in range(len(remote)):
        np.testing.assert_array_equal(remote.signal(position), local.signal(position))
    assert remote.metadata(["record_id"]).collect().height == 2
