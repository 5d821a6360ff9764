"""Named benchmarks: data folder resolution, checksums, task names, the published reference table,
the 'files' data set; and the real data (1-NN reproduces the published rows) when present."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from transferkit import ConfigError, DataError
from transferkit.core.errors import UnknownNameError
from transferkit.core.registries import DATASETS
from transferkit.data import paths, reference
from transferkit.data.benchmarks import AmazonReviews5000d, MnistUspsJDA, OfficeCaltech10SURF

FILES = OfficeCaltech10SURF.FILES


@pytest.fixture(autouse=True)
def _fresh_caches():
    paths.clear_caches()
    reference.clear_cache()
    yield
    paths.clear_caches()
    reference.clear_cache()


def _write_sums(root):
    lines = []
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  ./{f.relative_to(root).as_posix()}")
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture
def fake_root(tmp_path):
    """A tiny benchmark folder: Office-Caltech10 files of 20 samples x 12 counts, with SHA256SUMS
    and a reference table."""
    import scipy.io

    root = tmp_path / "data"
    sub = root / "office_caltech10_surf"
    sub.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, fname in enumerate(FILES.values()):
        fts = rng.integers(0, 9, size=(20, 12)).astype(np.uint8)
        fts[:, 5] = 0  # an unused word: zero variance, z-scored to 0 (not NaN)
        scipy.io.savemat(sub / fname, {"fts": fts, "labels": np.tile(np.arange(1, 11), 2)[:, None]})
    (root / "reference_results.csv").write_text(
        "benchmark,task,method,accuracy,source,verified\n"
        'office_caltech10_surf,C-A,1NN,12.5,"Paper X, Table 2",checked\n'
        "digits_lenet,MNIST-USPS,source-only,82.1,TLlib,protocol differs\n")
    _write_sums(root)
    return root


# -- data folder --------------------------------------------------------------------------------
def test_loads_from_fake_folder_with_jda_preprocessing(fake_root):
    b = OfficeCaltech10SURF(tasks="C->A", data_dir=str(fake_root))
    assert b.task_names() == ["C-A"]
    (task,) = list(b.tasks())
    assert task.name == "C-A" and task.benchmark == "office_caltech10_surf"
    assert task.train.sample_shape == (12,) and task.num_classes == 10
    assert (task.train.target().y == -1).all() and len(task.x_test) == 20  # transductive
    xs = task.train.source().x
    np.testing.assert_allclose(xs.mean(0), 0, atol=1e-5)  # z-scored per domain
    assert (xs[:, 5] == 0).all() and np.isfinite(xs).all()
    assert "transductive" in task.notes


def test_env_variable_and_explicit_folder(fake_root, monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSFERKIT_DATA", str(fake_root))
    assert paths.resolve_data_dir() == fake_root.resolve()
    assert OfficeCaltech10SURF(tasks="W-D").load_task("W-D").train.sample_shape == (12,)
    with pytest.raises(DataError, match=r"data_dir .*nowhere' is not a folder"):
        paths.resolve_data_dir(tmp_path / "nowhere")
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"\$TRANSFERKIT_DATA=.*gone' is not a folder"):
        paths.resolve_data_dir()


def test_no_folder_found_says_how_to_set_it(monkeypatch, tmp_path):
    monkeypatch.delenv("TRANSFERKIT_DATA", raising=False)
    monkeypatch.setattr(paths, "candidate_data_dirs", lambda: [tmp_path / "shared" / "data"])
    with pytest.raises(DataError, match=r"not found .*Set the environment variable TRANSFERKIT_DATA"):
        paths.resolve_data_dir()
    assert reference.published("office_caltech10_surf", "C-A", "1nn") is None


def test_cwd_relative_default(fake_root, monkeypatch, tmp_path):
    monkeypatch.delenv("TRANSFERKIT_DATA", raising=False)
    shared = tmp_path / "shared"
    shared.mkdir()
    fake_root.rename(shared / "data")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert paths.resolve_data_dir() == (shared / "data").resolve()


# -- checksums ----------------------------------------------------------------------------------
def test_checksum_mismatch_names_file_and_hashes(fake_root):
    f = fake_root / "office_caltech10_surf" / FILES["A"]
    expected = hashlib.sha256(f.read_bytes()).hexdigest()
    data = bytearray(f.read_bytes())
    data[20] ^= 1  # one bit of the text header: still a readable .mat, but not the listed file
    f.write_bytes(bytes(data))
    actual = hashlib.sha256(f.read_bytes()).hexdigest()
    b = OfficeCaltech10SURF(data_dir=str(fake_root))
    with pytest.raises(DataError, match=rf"amazon_SURF_L10\.mat: checksum mismatch \(expected sha256 "
                                        rf"{expected}, got {actual}\).*Restore the original file"):
        b.load_task("C-A")
    # the check can be turned off on purpose
    OfficeCaltech10SURF(data_dir=str(fake_root), verify_checksums=False).load_task("C-A")


def test_missing_file_and_missing_sums(fake_root):
    (fake_root / "office_caltech10_surf" / FILES["D"]).unlink()
    with pytest.raises(DataError, match=r"dslr_SURF_L10\.mat: benchmark file missing.*TRANSFERKIT_DATA"):
        OfficeCaltech10SURF(data_dir=str(fake_root)).load_task("C-D")
    (fake_root / "SHA256SUMS").unlink()
    with pytest.raises(DataError, match=r"SHA256SUMS: checksum list missing"):
        OfficeCaltech10SURF(data_dir=str(fake_root)).load_task("C-A")


def test_verified_once_per_process(fake_root, monkeypatch):
    calls = []
    real = paths.sha256_file
    monkeypatch.setattr(paths, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    b = OfficeCaltech10SURF(data_dir=str(fake_root))
    b.load_task("C-A")
    OfficeCaltech10SURF(data_dir=str(fake_root)).load_task("A-C")
    assert len(calls) == 2  # C and A hashed once each


def test_file_not_listed_in_sums(fake_root):
    (fake_root / "SHA256SUMS").write_text("")
    with pytest.raises(DataError, match=r"not listed in .*SHA256SUMS"):
        OfficeCaltech10SURF(data_dir=str(fake_root)).load_task("C-A")


# -- task names ---------------------------------------------------------------------------------
def test_task_name_forms():
    assert OfficeCaltech10SURF.select_tasks("all") == list(OfficeCaltech10SURF.TASKS)
    assert OfficeCaltech10SURF.select_tasks(["C->A", "c-a", "amazon->webcam", "D - W"]) == ["C-A", "A-W", "D-W"]
    assert OfficeCaltech10SURF.select_tasks("W-D,dslr->caltech") == ["W-D", "D-C"]
    assert MnistUspsJDA.select_tasks("mnist->usps") == ["MNIST-USPS"]
    assert AmazonReviews5000d.select_tasks("books->kitchen") == ["B-K"]
    assert len(AmazonReviews5000d.TASKS) == 12 and AmazonReviews5000d.TASKS[0] == "B-D"


def test_unknown_task_suggests():
    with pytest.raises(UnknownNameError, match=r"unknown task 'C-X' of 'office_caltech10_surf'\. Did you mean 'C-"):
        OfficeCaltech10SURF(tasks="C-X")
    with pytest.raises(UnknownNameError, match=r"Did you mean 'MNIST-USPS'"):
        MnistUspsJDA(tasks=["MNIST-USP"])
    with pytest.raises(UnknownNameError, match=r"data\.params\.tasks|tasks: unknown task 'A-A'"):
        DATASETS.create("office_caltech10_surf", {"tasks": "A-A"}, path="data")
    with pytest.raises(ConfigError, match=r"preprocess: got 'zscore'"):
        OfficeCaltech10SURF(preprocess="zscore")  # type: ignore[arg-type]


def test_registry_params_are_keyword_only_and_typed():
    e = DATASETS.entry("amazon_reviews_5000d")
    assert e.defaults() == {"tasks": "all", "data_dir": None, "preprocess": "none", "msda_noise": 0.5,
                            "msda_layers": 5, "verify_checksums": True}
    with pytest.raises(ConfigError, match="expected one of 'none', 'binary', 'tfidf', 'msda'"):
        DATASETS.create("amazon_reviews_5000d", {"preprocess": "bm25"})
    with pytest.raises(ConfigError, match="layers"):
        DATASETS.create("amazon_reviews_5000d", {"preprocess": "msda", "msda_layers": 0})


def test_amazon_msda_features_are_fitted_on_the_unlabelled_training_rows(monkeypatch):
    import scipy.sparse as sp

    from transferkit.shallow.msda import msda_fit, msda_transform

    rng = np.random.default_rng(0)
    files = {f"{dom}_{part}": (sp.csr_matrix(rng.poisson(0.8, size=(n, 6)).astype(float)), rng.integers(0, 2, n))
             for dom in AmazonReviews5000d.DOMAINS.values() for part, n in (("train", 40), ("test", 25))}

    class Tiny(AmazonReviews5000d):
        N_FEATURES = 6

        def split(self, domain, part):
            return files[f"{self.DOMAINS[domain]}_{part}"]

    (t,) = list(Tiny(tasks="B-K", preprocess="msda", msda_layers=2, msda_noise=0.3, verify_checksums=False).tasks())
    xs, xt, xtest = files["books_train"][0].toarray(), files["kitchen_train"][0].toarray(), files["kitchen_test"][0].toarray()
    ws = msda_fit(np.vstack([xs, xt]), noise=0.3, layers=2)
    assert t.train.source().x.shape == (40, 18) and t.x_test.shape == (25, 18)
    np.testing.assert_allclose(t.train.source().x, msda_transform(xs, ws), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.train.target().x, msda_transform(xt, ws), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.x_test, msda_transform(xtest, ws), rtol=1e-5, atol=1e-6)
    assert "mSDA" in t.notes and "18-d" in t.notes
    # the published figures are for raw counts: none is looked up for mSDA features
    assert t.reference == "amazon_reviews_5000d[msda]"
    from transferkit.data.reference import published

    assert published(t.reference, "B-K", "dann") is None


# -- reference table ----------------------------------------------------------------------------
def test_published_matching_rules(fake_root):
    acc, text = reference.published("office_caltech10_surf", "C->A", "1nn", data_dir=fake_root)
    assert acc == 12.5 and text == "Paper X, Table 2 (checked)"
    assert reference.published("digits_lenet", "mnist->usps", "source_only", data_dir=fake_root)[0] == 82.1
    assert reference.published("office_caltech10_surf", "C-W", "1nn", data_dir=fake_root) is None
    assert reference.published("office_caltech10_surf", "C-A", "1nn", data_dir=fake_root / "none") is None


# -- files data set -----------------------------------------------------------------------------
def test_files_dataset(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "src.npz", x=rng.normal(size=(10, 3)), y=np.arange(10) % 2)
    np.savez(tmp_path / "tgt.npz", x=rng.normal(size=(6, 3)), y=np.arange(6) % 2)
    ds = DATASETS.create("files", {"source": str(tmp_path / "src.npz"), "target": str(tmp_path / "tgt.npz")})
    assert ds.task_names() == ["src->tgt"]
    (task,) = list(ds.tasks())
    assert (task.train.target().y == -1).all() and task.y_test.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(ConfigError, match="missing required parameter 'source'"):
        DATASETS.create("files", {"target": "t.npz"})


# -- the real benchmark files (skipped when ../shared/data is absent) ----------------------------
def _one_nn_accuracy(task) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    X, y, sd = task.train.to_numpy()
    clf = KNeighborsClassifier(n_neighbors=1).fit(X[sd >= 0], y[sd >= 0])
    return 100.0 * float((clf.predict(task.x_test) == task.y_test).mean())


def test_office_caltech_1nn_reproduces_published_row(shared_data):
    b = OfficeCaltech10SURF(data_dir=str(shared_data))
    accs = {}
    for task in b.tasks():
        accs[task.name] = _one_nn_accuracy(task)
        pub = reference.published(b.name, task.name, "1nn", data_dir=shared_data)
        assert pub is not None and abs(accs[task.name] - pub[0]) <= 0.1 + 1e-9, (task.name, accs[task.name], pub)
    assert list(accs) == list(OfficeCaltech10SURF.TASKS)
    assert round(float(np.mean(list(accs.values()))), 1) == 31.4
    t = b.load_task("C->A")
    assert t.train.source().x.shape == (1123, 800) and t.x_test.shape == (958, 800)


def test_mnist_usps_1nn_reproduces_jda_paper(shared_data):
    from transferkit.data.readers import read_mat

    raw = read_mat(shared_data / "mnist_usps_jda" / "MNIST_vs_USPS.mat", ["Xs", "Ys"])
    assert raw["Xs"].shape == (256, 2000) and raw["Ys"].shape == (2000, 1)  # MATLAB's orientation
    b = MnistUspsJDA(data_dir=str(shared_data))
    got = {t.name: round(_one_nn_accuracy(t), 2) for t in b.tasks()}
    assert got == {"MNIST-USPS": 65.94, "USPS-MNIST": 44.70}
    t = b.load_task("MNIST-USPS")
    assert t.train.source().x.shape == (2000, 256) and t.x_test.shape == (1800, 256)
    np.testing.assert_allclose(np.linalg.norm(t.x_test, axis=1), 1.0, rtol=1e-5)


def test_amazon_task_shapes_and_labels(shared_data):
    b = AmazonReviews5000d(tasks="B->D", data_dir=str(shared_data))
    (t,) = list(b.tasks())
    assert t.name == "B-D" and t.train.source().x.shape == (2000, 5000) and t.train.x.dtype == np.float32
    assert t.train.target().x.shape == (2000, 5000) and t.x_test.shape == (3586, 5000)
    assert set(np.unique(t.train.source().y)) == {0, 1} and set(np.unique(t.y_test)) == {0, 1}
    assert (t.train.target().y == -1).all() and t.train.classes == ["negative", "positive"]
