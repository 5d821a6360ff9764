"""Readers for review XML, JSONL/CSV texts, image folders and Fashion-MNIST; the text and image
data sets through an encoder; the amazon_reviews_text split."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.core.errors import ConfigError, DataError
from transferkit.data.text import (
    read_review_folder,
    read_reviews,
    read_text_table,
    review_texts,
)
from transferkit.models.encoders.base import Encoder

REVIEW = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<reviews>
<review>
<rating>
{rating}
</rating>
<title>
{title}
</title>
<review_text>
{text}
</review_text>
</review>
</reviews>
"""


def _reviews(*items: tuple[str, str, str]) -> str:
    head, tail = REVIEW.split("<review>", 1)[0], "</reviews>\n"
    body = "".join("<review>" + REVIEW.format(rating=r, title=t, text=x).split("<review>", 1)[1]
                   .rsplit("</reviews>", 1)[0] for r, t, x in items)
    return head + body + tail


# -- review XML ----------------------------------------------------------------------------------
def test_read_reviews_fields_entities_and_bare_ampersand(tmp_path):
    p = tmp_path / "positive.review"
    p.write_text(_reviews(("5.0", "Great &amp; cheap", "Loved it & would buy again <3.\n\nTwo paragraphs."),
                          ("4.0", "Fine", "Works &quot;as advertised&quot;")), encoding="utf-8")
    r = read_reviews(p)
    assert len(r) == 2
    assert r[0]["title"] == "Great & cheap" and r[0]["rating"] == "5.0"
    assert r[0]["review_text"] == "Loved it & would buy again <3.\n\nTwo paragraphs."
    assert r[1]["review_text"] == 'Works "as advertised"'
    assert review_texts(r, ["title", "review_text"])[1] == 'Fine\n\nWorks "as advertised"'


def test_read_reviews_latin1_and_gzip(tmp_path):
    raw = _reviews(("1.0", "Bad", "Caf\xe9 mug cracked")).encode("latin-1")
    (tmp_path / "a.review").write_bytes(raw)
    assert read_reviews(tmp_path / "a.review")[0]["review_text"] == "Caf\xe9 mug cracked"
    (tmp_path / "b.review.gz").write_bytes(gzip.compress(raw))
    assert read_reviews(tmp_path / "b.review.gz")[0]["review_text"] == "Caf\xe9 mug cracked"


def test_read_reviews_errors(tmp_path):
    (tmp_path / "x.review").write_text("<reviews></reviews>")
    with pytest.raises(DataError, match="no <review>"):
        read_reviews(tmp_path / "x.review")
    with pytest.raises(DataError, match="not found"):
        read_reviews(tmp_path / "missing.review")
    with pytest.raises(DataError, match="none of the fields"):
        review_texts([{"title": "t"}], ["review_text"])


def test_read_review_folder_labels(tmp_path):
    (tmp_path / "negative.review").write_text(_reviews(("1.0", "a", "bad"), ("2.0", "b", "worse")))
    (tmp_path / "positive.review").write_text(_reviews(("5.0", "c", "good")))
    texts, y = read_review_folder(tmp_path)
    assert texts == ["bad", "worse", "good"] and y.tolist() == [0, 0, 1]
    (tmp_path / "positive.review").unlink()
    with pytest.raises(DataError, match="positive.review"):
        read_review_folder(tmp_path)


# -- JSONL / CSV ---------------------------------------------------------------------------------
def test_read_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(o) for o in [{"text": "a, b", "label": "pos"}, {"text": "c", "label": "neg"}]))
    texts, y = read_text_table(p)
    assert texts == ["a, b", "c"] and y.tolist() == ["pos", "neg"]
    p.write_text('{"text": "a", "label": 1}\n{"body": "b", "label": 0}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: no key 'text'"):
        read_text_table(p)
    p.write_text('{"text": "a", "label": 1}\nnot json\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: not a JSON object"):
        read_text_table(p)


def test_read_csv_quoted_multiline_and_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('id,review,stars\n1,"Nice, really.\nSecond line",1\n2,"Meh ""ok""",0\n')
    texts, y = read_text_table(p, text_column="review", label_column="stars")
    assert texts == ["Nice, really.\nSecond line", 'Meh "ok"'] and y.tolist() == [1, 0]
    assert read_text_table(p, text_column=1, label_column=None)[1] is None
    with pytest.raises(DataError, match="no text column 'text'"):
        read_text_table(p)
    p.write_text("text,label\na,1\nb,0,extra\n")
    with pytest.raises(DataError, match="row 3 has 3 fields"):
        read_text_table(p)


# -- a tiny registered encoder for the data-set tests ----------------------------------------------
class CharCounts(Encoder):
    """Texts -> letter counts (26-d) then a fixed linear map; images -> mean per channel."""

    name = "char_counts_test"

    def __init__(self, *, width: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(26, width)
        self.num_features = width
        self._params = {"width": width}

    def preprocess(self, data: Any) -> np.ndarray:
        if isinstance(data, np.ndarray):  # images (n, H, W[, C]) uint8
            x = data.reshape(len(data), -1, data.shape[-1] if data.ndim == 4 else 1).mean(axis=1)
            out = np.zeros((len(data), 26), np.float32)
            out[:, : x.shape[1]] = x / 255.0
            return out
        out = np.zeros((len(data), 26), np.float32)
        for i, t in enumerate(data):
            codes = np.frombuffer(t.lower().encode("ascii", "ignore"), np.uint8).astype(np.int64) - 97
            out[i] = np.bincount(codes[(codes >= 0) & (codes < 26)], minlength=26)
        return out

    def preprocess_settings(self) -> dict[str, Any]:
        return {}

    def layer_groups(self) -> list[nn.Module]:
        return [self.lin]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


@pytest.fixture
def char_encoder(monkeypatch):
    from transferkit.core.registries import ENCODERS
    from transferkit.core.registry import Entry

    ENCODERS._load()
    monkeypatch.setitem(ENCODERS._entries, CharCounts.name, Entry(CharCounts.name, CharCounts, "test encoder"))
    return CharCounts.name


def test_text_files_dataset_through_the_cache(tmp_path, char_encoder):
    from transferkit.core.registries import DATASETS

    src, tgt = tmp_path / "src.jsonl", tmp_path / "tgt.csv"
    src.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in
                             [("good good", "pos"), ("bad", "neg"), ("great", "pos"), ("awful", "neg")]))
    tgt.write_text("text,label\nlovely,pos\nhorrid,neg\nnice,pos\n")
    params = {"source": str(src), "target": str(tgt), "encoder": char_encoder, "cache_dir": str(tmp_path / "c"),
              "progress": False}
    task = DATASETS.create("text_files", params).load_task()
    assert task.train.x.shape == (7, 4) and task.num_classes == 2
    assert task.train.classes == ["neg", "pos"] and task.y_test.tolist() == [1, 0, 1]
    assert (task.train.y[~task.train.is_source] == -1).all()
    assert not any(v["hit"] for v in task.feature_cache.values())
    again = DATASETS.create("text_files", params).load_task()
    assert all(v["hit"] for v in again.feature_cache.values())
    np.testing.assert_array_equal(again.train.x, task.train.x)
    inputs = DATASETS.create("text_files", {**params, "representation": "inputs"}).load_task()
    assert inputs.train.x.shape == (7, 26)
    with pytest.raises(ConfigError, match="set encoder"):
        DATASETS.create("text_files", {"source": str(src), "target": str(tgt)}).load_task()
    with pytest.raises(ConfigError, match="unknown encoder"):
        DATASETS.create("text_files", {**params, "encoder": "minilmm"})
    with pytest.raises(ConfigError, match="representation"):
        DATASETS.create("text_files", {**params, "representation": "pixels"})


# -- image folders ---------------------------------------------------------------------------------
def _write_images(root, sizes=((8, 8),)):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for c, base in (("cat", 40), ("dog", 200)):
        (root / c).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes * 2):
            arr = np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")


def test_read_image_folder(tmp_path):
    from transferkit.data.images import read_image_folder

    _write_images(tmp_path / "a")
    x, y, classes = read_image_folder(tmp_path / "a")
    assert x.shape == (4, 8, 8, 3) and x.dtype == np.uint8
    assert classes == ["cat", "dog"] and y.tolist() == [0, 0, 1, 1]
    assert x[y == 0].mean() < 100 < x[y == 1].mean()
    g, _, _ = read_image_folder(tmp_path / "a", mode="L", size=5)
    assert g.shape == (4, 5, 5)
    _write_images(tmp_path / "b", sizes=((8, 8), (6, 9)))
    with pytest.raises(DataError, match="different sizes"):
        read_image_folder(tmp_path / "b")
    assert read_image_folder(tmp_path / "b", size=7)[0].shape == (8, 7, 7, 3)
    with pytest.raises(DataError, match="no folder for class"):
        read_image_folder(tmp_path / "a", classes=["cat", "bird"])
    with pytest.raises(DataError, match="not found"):
        read_image_folder(tmp_path / "nope")


def test_image_folders_dataset(tmp_path, char_encoder):
    from transferkit.core.registries import DATASETS

    _write_images(tmp_path / "src")
    _write_images(tmp_path / "tgt")
    raw = DATASETS.create("image_folders", {"source": str(tmp_path / "src"), "target": str(tmp_path / "tgt")})
    task = raw.load_task()
    assert task.train.x.shape == (8, 3, 8, 8) and 0.0 <= task.train.x.min() and task.train.x.max() <= 1.0
    assert task.y_test.tolist() == [0, 0, 1, 1]
    enc = DATASETS.create("image_folders", {"source": str(tmp_path / "src"), "target": str(tmp_path / "tgt"),
                                            "encoder": char_encoder, "cache_dir": str(tmp_path / "c"),
                                            "progress": False}).load_task()
    assert enc.train.x.shape == (8, 4)
    # no adaptation data: the source alone, accuracy on target_test (raw pixels and encoded)
    for params in ({}, {"encoder": char_encoder, "cache_dir": str(tmp_path / "c"), "progress": False}):
        alone = DATASETS.create("image_folders", {"source": str(tmp_path / "src"),
                                                  "target_test": str(tmp_path / "tgt"), **params}).load_task()
        assert alone.train.is_source.all() and len(alone.train.x) == 4 and alone.y_test.tolist() == [0, 0, 1, 1]
        assert alone.train.x.shape[1:] == alone.x_test.shape[1:] and alone.name == "src->tgt"
    with pytest.raises(ConfigError, match="give target"):
        DATASETS.create("image_folders", {"source": str(tmp_path / "src")})


# -- Fashion-MNIST -----------------------------------------------------------------------------------
def test_fashion_mnist_missing_names_the_debian_package(tmp_path, monkeypatch):
    from transferkit.data.fashion_mnist import fashion_mnist_dir, load_fashion_mnist

    with pytest.raises(DataError, match=r"apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path)
    monkeypatch.setenv("TRANSFERKIT_FASHION_MNIST", str(tmp_path / "none"))
    with pytest.raises(DataError, match=r"TRANSFERKIT_FASHION_MNIST.*apt-get install dataset-fashion-mnist"):
        fashion_mnist_dir()
    with pytest.raises(ConfigError, match="'train' or 'test'"):
        load_fashion_mnist("val", root=tmp_path)


def test_fashion_mnist_reads_idx_files(tmp_path):
    from transferkit.data.fashion_mnist import FILES, load_fashion_mnist

    def idx(arr: np.ndarray) -> bytes:
        head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        return gzip.compress(head + arr.astype(np.uint8).tobytes())

    for split, (img, lab, n) in FILES.items():
        m = 10 if split == "train" else 20
        y = np.repeat(np.arange(10), m // 10)
        (tmp_path / img).write_bytes(idx(np.full((m, 28, 28), 7)))
        (tmp_path / lab).write_bytes(idx(y))
    with pytest.raises(DataError, match="expected 60000 images"):
        load_fashion_mnist("train", root=tmp_path)


def test_fashion_mnist_installed():
    from transferkit.data.fashion_mnist import DEFAULT_DIR, load_fashion_mnist

    if not (DEFAULT_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist is not installed")
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [1000] * 10


# -- amazon_reviews_text ---------------------------------------------------------------------------
def test_amazon_reviews_text_split_and_texts(shared_data):
    from transferkit.core.registries import DATASETS

    d = DATASETS.create("amazon_reviews_text", {"tasks": "B-K,E-K"})
    assert d.task_names() == ["B-K", "E-K"] and len(DATASETS.get("amazon_reviews_text").TASKS) == 12
    a, b = d.load_texts("B-K"), d.load_texts("e->kitchen")
    assert len(a.source_texts) == 2000 and a.source_labels.sum() == 1000
    assert len(a.target_texts) == 1000 and len(a.test_texts) == 1000
    assert a.test_labels.sum() == 500 and a.target_labels.sum() == 500   # stratified halves
    assert a.test_texts == b.test_texts                                  # one split per target domain
    tr, te = d.target_split("K")
    assert len(np.intersect1d(tr, te)) == 0 and len(np.union1d(tr, te)) == 2000
    texts, _ = d.domain_texts("K")
    assert a.test_texts == [texts[i] for i in te]
    assert a.source_texts[0] != a.test_texts[0] and "<" not in "".join(a.source_texts[:50])
    other = DATASETS.create("amazon_reviews_text", {"tasks": "B-K", "seed": 1}).load_texts("B-K")
    assert other.test_texts != a.test_texts
    with pytest.raises(ConfigError, match="set encoder"):
        d.load_task("B-K")


def test_amazon_reviews_text_task_with_an_encoder(shared_data, char_encoder, tmp_path):
    from transferkit.core.registries import DATASETS

    params = {"tasks": "D-E", "encoder": char_encoder, "cache_dir": str(tmp_path), "progress": False}
    task = DATASETS.create("amazon_reviews_text", params).load_task("D-E")
    assert task.train.x.shape == (3000, 4) and task.x_test.shape == (1000, 4)
    assert task.benchmark == "amazon_reviews_text" and task.train.classes == ["negative", "positive"]
    assert set(task.feature_cache) == {"dvd", "electronics"}
    hit = DATASETS.create("amazon_reviews_text", params).load_task("D-E")
    assert all(v["hit"] for v in hit.feature_cache.values())
    np.testing.assert_array_equal(hit.x_test, task.x_test)


def test_encoded_inputs_in_chunks_and_memory_limit(char_encoder, monkeypatch):
    from transferkit.data.encoded import EncodedInputs

    texts = [f"text number {i} " + "ab" * (i % 7) for i in range(70)]
    enc = EncodedInputs(char_encoder, representation="inputs", batch_size=2)  # chunks of 32
    x = enc(texts, label="part")
    np.testing.assert_array_equal(x, enc.encoder.preprocess(texts))
    assert enc.log["part"]["shape"] == [70, 26]
    monkeypatch.setattr(EncodedInputs, "MAX_INPUT_BYTES", 26 * 4 * 50)
    with pytest.raises(ConfigError, match="would take"):
        enc(texts, label="part")


def test_second_run_reads_the_cache_and_the_reports_show_both_timings(tmp_path, char_encoder):
    """Two runs of one experiment on frozen-encoder features: the first extracts, the second reads
    the cache; report.md and the bench table name the hit with both timings and their ratio."""
    from transferkit.experiment.bench import write_bench_tables
    from transferkit.experiment.config import validate_config
    from transferkit.experiment.runner import run_experiment

    src, tgt = tmp_path / "src.jsonl", tmp_path / "tgt.jsonl"
    words = [("good great", "pos"), ("bad awful", "neg"), ("great fine", "pos"), ("awful poor", "neg")] * 3
    src.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in words))
    tgt.write_text("\n".join(json.dumps({"text": t.upper(), "label": lab}) for t, lab in words))
    raw = {"name": "cache-twice", "seed": 0,
           "data": {"name": "text_files", "params": {"source": str(src), "target": str(tgt), "encoder": char_encoder,
                                                      "cache_dir": str(tmp_path / "cache"), "progress": False}},
           "methods": [{"name": "logreg"}]}
    first = run_experiment(validate_config(raw), tmp_path / "r1", progress=False)
    second = run_experiment(validate_config(raw), tmp_path / "r2", progress=False)
    (t1, info1), = first.task_info.items()
    (t2, info2), = second.task_info.items()
    assert "extracted" in info1["feature_cache"] and "cache hit" not in info1["feature_cache"]
    assert info2["feature_cache"].count("cache hit") == 2 and "extraction took" in info2["feature_cache"]
    assert "faster" in info2["feature_cache"]
    assert "cache hit" in (tmp_path / "r2" / "report.md").read_text()
    assert "cache hit" in write_bench_tables(second, tmp_path / "b")
    assert first.runs[0].metrics["target_accuracy"] == second.runs[0].metrics["target_accuracy"]


def test_quiet_runs_show_no_feature_extraction_bar(tmp_path, char_encoder, capsys):
    """run_experiment(progress=False) (`--quiet`) also silences the data set's extraction bars,
    unless the config sets the data set's own `progress`."""
    from transferkit.experiment.config import validate_config
    from transferkit.experiment.runner import run_experiment

    src = tmp_path / "src.jsonl"
    src.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in [("good", "pos"), ("bad", "neg")] * 4))
    def raw(cache: str) -> dict:
        return {"name": "quiet", "seed": 0, "methods": [{"name": "logreg"}],
                "data": {"name": "text_files", "params": {"source": str(src), "target": str(src), "encoder": char_encoder,
                                                          "cache_dir": str(tmp_path / cache)}}}

    run_experiment(validate_config(raw("c1")), tmp_path / "r1", progress=False)
    assert "batch/s" not in capsys.readouterr().err
    run_experiment(validate_config(raw("c2")), tmp_path / "r2", progress=True)
    assert "batch/s" in capsys.readouterr().err


def test_text_files_without_target_fine_tunes_on_the_source_alone(tmp_path, char_encoder):
    from transferkit.core.registries import DATASETS

    """No adaptation data: source_only trains and is measured on target_test; a method that adapts
    fails with a message naming what is missing, and the other runs and the report are kept."""
    from transferkit.experiment.config import validate_config
    from transferkit.experiment.runner import run_experiment

    src, test = tmp_path / "src.jsonl", tmp_path / "test.jsonl"
    words = [("good great", "pos"), ("bad awful", "neg"), ("great fine", "pos"), ("awful poor", "neg")] * 6
    src.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in words))
    test.write_text("\n".join(json.dumps({"text": t + " !", "label": lab}) for t, lab in words[:8]))
    params = {"source": str(src), "target_test": str(test), "encoder": char_encoder,
              "cache_dir": str(tmp_path / "cache"), "progress": False}
    task = DATASETS.create("text_files", params).load_task()
    assert task.train.is_source.all() and len(task.x_test) == 8 and task.name == "src->test"
    raw = {"name": "no-target", "seed": 0, "data": {"name": "text_files", "params": params},
           "model": {"name": "tiny_mlp"},
           "train": {"steps": 40, "batch_size": 8, "progress": False, "checkpoint_every": 0},
           "methods": ["source_only", {"name": "dann", "params": {"disc_hidden": 8}}, "coral", "logreg"]}
    res = run_experiment(validate_config(raw), tmp_path / "out", progress=False)
    by = {r.method: r for r in res.runs}
    assert by["source_only"].status == "ok" and 0 <= by["source_only"].metrics["target_accuracy"] <= 100
    assert by["dann"].status == "failed" and "no target samples" in by["dann"].error
    assert by["coral"].status == "failed"
    assert "coral adapts to a target domain" in by["coral"].error and "source-only baseline" in by["coral"].error
    # a shallow source-only baseline trains without target rows: the same as a direct fit on the source
    from sklearn.linear_model import LogisticRegression

    direct = LogisticRegression(C=1.0, max_iter=2000).fit(task.train.x.reshape(len(task.train.x), -1), task.train.y)
    expected = 100.0 * np.mean(direct.predict(task.x_test.reshape(len(task.x_test), -1)) == task.y_test)
    assert by["logreg"].status == "ok" and by["logreg"].metrics["target_accuracy"] == pytest.approx(expected)
    assert (tmp_path / "out" / "report.md").is_file()
    with pytest.raises(ConfigError, match="give target"):
        DATASETS.create("text_files", {"source": str(src), "encoder": char_encoder})
