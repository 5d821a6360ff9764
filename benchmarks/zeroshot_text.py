"""Zero-shot sentiment on the four ``amazon_reviews_text`` domains from label descriptions: a review
is given the class (negative / positive) whose description embedding has the highest cosine
similarity with the review's all-MiniLM-L6-v2 embedding (:class:`transferkit.zeroshot.DescriptionClassifier`).
No review label is used to build or choose anything.

Evaluation, per domain: the benchmark's fixed held-out half (1,000 reviews, stratified split,
seed 0). Review embeddings: frozen MiniLM (mean pooling, L2-normalised, 256 tokens), read from the
feature cache.

The headline description set, :data:`HEADLINE`, was written before any run and is the only one
the headline reports. The other rows (:data:`VARIANTS`, also fixed before any run) are reported
in full, whatever their result: single templates, and the headline set with ``center=True``
(the mean embedding of the domain's *unlabelled* adaptation half subtracted from every review
embedding).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 \\
        python benchmarks/zeroshot_text.py

Head+tail truncation (added 2026-11-24 22:38 UTC, before its run): ``--truncation head_tail``
embeds every review with the same encoder and length (256 tokens) but keeps, for a review longer
than that, its first 64 and its last 190 word pieces (Sun et al. 2019; the ``minilm`` encoder's
``truncation="head_tail"``) instead of its first 254. 26-27 % of the book and DVD reviews and
8-13 % of the electronics and kitchen ones are longer than 256 word pieces; a review's verdict is
often at its end. The reason is the review lengths (counted from the texts alone, no label) and the
fine-tuning result of ``amazon_reviews_text_truncation.md``, where keeping the end raised held-out
*source* accuracy on all four sources. Every row above is re-run unchanged on these embeddings and
reported as obtained, in ``zeroshot_text_head_tail.md`` / ``.csv``; the self-training row stays the
pipeline judged against the issue's 65, as in ``zeroshot_text.md``. This is the third zero-shot
attempt on the same held-out halves (headline, then self-training, now the truncation).
Sentence means (added 2026-11-25, before its run; protocol in
``results/zeroshot_text_sentences_PROTOCOL.md``): ``--segment sentence`` embeds every review as
the normalised mean of the unit MiniLM embeddings of its sentences
(:func:`transferkit.models.sentences.sentence_mean_embeddings`; each sentence embedded alone,
through the feature cache) instead of in one pass; every row is re-run unchanged on these
embeddings, in ``zeroshot_text_sentences.md`` / ``.csv``. This is the fourth attempt on the same
held-out halves.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = {"B": "books", "D": "dvd", "E": "electronics", "K": "kitchen"}
#: fixed in advance: three domain-neutral descriptions per class, averaged (prompt ensembling)
HEADLINE = {
    "negative": ["This review is negative.", "I hated it and do not recommend it.", "Terrible, one star."],
    "positive": ["This review is positive.", "I loved it and highly recommend it.", "Excellent, five stars."],
}
#: every other variant reported (fixed in advance too): (name, descriptions or template, center)
VARIANTS = [
    ("template 'This review is {}.'", "This review is {}.", False),
    ("template 'A {} review.'", "A {} review.", False),
    ("class name alone ('negative' / 'positive')", "{}", False),
    ("headline set, centred on the unlabelled adaptation half", HEADLINE, True),
]
#: self-training on the unlabelled adaptation half (Gera et al., EMNLP 2022), added after the
#: headline missed 65; its settings (2 rounds, top 20 % per class, logistic head C=1) were fixed
#: before its first run, and every sensitivity row below is reported as obtained.
SELF_TRAINED = ("headline set + self-training: 2 rounds, top 20% per class", HEADLINE, False,
                {"self_train_rounds": 2, "self_train_fraction": 0.2})
SELF_TRAINED_VARIANTS = [
    ("self-training: 1 round, top 20% per class", HEADLINE, False, {"self_train_rounds": 1, "self_train_fraction": 0.2}),
    ("self-training: 3 rounds, top 20% per class", HEADLINE, False, {"self_train_rounds": 3, "self_train_fraction": 0.2}),
    ("self-training: 2 rounds, top 10% per class", HEADLINE, False, {"self_train_rounds": 2, "self_train_fraction": 0.1}),
    ("self-training: 2 rounds, top 40% per class", HEADLINE, False, {"self_train_rounds": 2, "self_train_fraction": 0.4}),
    ("self-training: 2 rounds, top 20% per class, centred", HEADLINE, True,
     {"self_train_rounds": 2, "self_train_fraction": 0.2}),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--truncation", default="head", choices=("head", "head_tail"),
                    help="how reviews longer than 256 word pieces are cut (minilm encoder parameter)")
    ap.add_argument("--segment", default="text", choices=("text", "sentence"),
                    help="embed a review in one pass, or as the mean of its sentences' embeddings")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    if args.segment == "sentence" and args.truncation != "head":
        ap.error("--segment sentence embeds sentences, which are short: leave --truncation at head")
    suffix = "" if args.truncation == "head" else f"_{args.truncation}"
    suffix += "" if args.segment == "text" else "_sentences"

    import torch

    from transferkit.data.text import AmazonReviewsText
    from transferkit.models.sentences import sentence_mean_embeddings
    from transferkit.zeroshot import DescriptionClassifier

    torch.set_num_threads(args.threads)
    params = {} if args.truncation == "head" else {"truncation": args.truncation}
    ds = AmazonReviewsText(encoder="minilm", encoder_params=params, progress=False, cache_dir=args.cache_dir)
    t0 = time.perf_counter()
    configs = [("headline: 3 descriptions per class, averaged", HEADLINE, False, {}),
               *[(*v, {}) for v in VARIANTS], SELF_TRAINED, *SELF_TRAINED_VARIANTS]
    acc: dict[str, dict[str, float]] = {name: {} for name, *_ in configs}
    cache_lines = []
    for key, dom in DOMAINS.items():
        texts, y = ds.domain_texts(key)
        tr, te = ds.target_split(key)
        enc = ds.encoded.encoder  # the same encoder (identity) as the cached features
        if args.segment == "text":
            feats = ds.domain_x(key)  # frozen MiniLM features from the feature cache
            cache_lines.append(f"{dom}: {ds.encoded.log[dom]['summary']}")
        else:  # each sentence embedded alone (feature cache), averaged per review
            sent = sentence_mean_embeddings(enc, texts, use_cache=True, cache_dir=args.cache_dir, progress=False)
            feats = sent.embeddings
            cache_lines.append(f"{dom}: {sent.summary} ({np.mean(sent.counts):.1f} sentences per review, "
                               f"at most {sent.counts.max()})")
        for name, desc, center, extra in configs:
            kw = {"descriptions": desc} if isinstance(desc, dict) else {"classes": ["negative", "positive"],
                                                                        "template": desc}
            clf = DescriptionClassifier(**kw, encoder=enc, center=center, **extra)
            # center / self-training: the unlabelled adaptation half, no labels
            clf.fit(embeddings=feats[tr]) if center or extra else clf.fit()
            pred = clf.predict_embeddings(feats[te])
            names = np.array(ds.CLASSES)[y[te]]
            acc[name][dom] = float(np.mean(pred == names))
        print(f"{dom}: " + "  ".join(f"{100 * acc[n][dom]:.1f}" for n, *_ in configs), flush=True)
    seconds = time.perf_counter() - t0

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    with open(results / f"zeroshot_text{suffix}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["descriptions", *DOMAINS.values(), "mean"])
        for name, *_ in configs:
            vals = [acc[name][d] for d in DOMAINS.values()]
            w.writerow([name, *[f"{100 * v:.2f}" for v in vals], f"{100 * np.mean(vals):.2f}"])
    machine = (f"2 CPU cores, shared with other jobs ({os.cpu_count()} visible), {platform.system()} "
               f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
               f"{args.threads} torch thread(s)")
    cmd = (f"OPENBLAS_NUM_THREADS={args.threads} OMP_NUM_THREADS={args.threads} MKL_NUM_THREADS={args.threads} "
           "HF_HUB_OFFLINE=1 python benchmarks/zeroshot_text.py"
           + ("" if args.truncation == "head" else f" --truncation {args.truncation}")
           + ("" if args.segment == "text" else f" --segment {args.segment}")
           + ("" if args.threads == 1 else f" --threads {args.threads}"))
    kept = ("256 tokens" if args.truncation == "head" else
            "256 tokens, a longer review keeping its first 64 and last 190 word pieces (head+tail)")
    if args.segment == "sentence":
        kept = ("here the normalised mean of the unit embeddings of the review's sentences, each embedded "
                "alone (cut after . ! ? and at line breaks; `transferkit.models.sentences`)")
    head = " / ".join(f'"{t}"' for t in HEADLINE["negative"])
    headp = " / ".join(f'"{t}"' for t in HEADLINE["positive"])
    lines = [f"<!-- produced by: {cmd} -->",
             f"<!-- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; machine: {machine} -->", "",
             "# Zero-shot sentiment from label descriptions (all-MiniLM-L6-v2), amazon_reviews_text", "",
             ("Each review gets the class whose description embedding is closest (cosine) to its frozen MiniLM "
              f"embedding (mean pooling, L2-normalised, {kept}; from the feature cache). Accuracy (%) on each "
              "domain's fixed held-out half (1,000 reviews; stratified split, seed 0). No review label is used. "
              "Chance: 50."), "",
             (f"Headline (fixed before any run): negative = {head}; positive = {headp}; the three description "
              "embeddings of a class are normalised and averaged. Every other row was also fixed before the run "
              "and is reported as obtained."), "",
             "| descriptions | " + " | ".join(DOMAINS.values()) + " | mean |",
             "|---|" + "---|" * (len(DOMAINS) + 1)]
    for i, (name, *_) in enumerate(configs):
        vals = [100 * acc[name][d] for d in DOMAINS.values()]
        cells = " | ".join(f"{v:.1f}" for v in vals)
        mean = f"{np.mean(vals):.1f}"
        bold = i == 0 or name == SELF_TRAINED[0]
        lines.append(f"| **{name}** | {cells} | **{mean}** |" if bold else f"| {name} | {cells} | {mean} |")
    # leave-one-domain-out choice: for each domain, the row with the best mean accuracy on the
    # three other (labelled) domains; the domain's own labels choose nothing
    names = [n for n, *_ in configs]
    doms = list(DOMAINS.values())
    lodo = {d: max(names, key=lambda n: np.mean([acc[n][o] for o in doms if o != d])) for d in doms}
    lodo_acc = [100 * acc[lodo[d]][d] for d in doms]
    lines.append("| row chosen per domain on the 3 other domains' labels (leave one domain out) | "
                 + " | ".join(f"{v:.1f}" for v in lodo_acc) + f" | {np.mean(lodo_acc):.1f} |")
    lines += ["", "Leave-one-domain-out choices: " + "; ".join(f"{d}: {lodo[d]}" for d in doms) + "."]
    lines += ["", ("'Centred': the mean embedding of the domain's other half (its 1,000 adaptation reviews, labels "
                   "unused) is subtracted from every review embedding before the cosine."), "",
              ("'Self-training' (Gera et al., 'Zero-Shot Text Classification with Self-Training', EMNLP 2022; "
               "`DescriptionClassifier(self_train_rounds=..., self_train_fraction=...)`): the domain's unlabelled "
               "adaptation half is scored by the headline rule; per class, the reviews it assigns to that class "
               "with the largest margin (the top fraction of the half, the same count per class) become "
               "pseudo-labels for a logistic-regression head (C=1) on the frozen embeddings, which re-scores the "
               "half for the next round; the last head predicts the held-out half. No review label is used. "
               "This pipeline was added after the headline missed 65; its settings (first self-training row) "
               "were fixed before its first run and the sensitivity rows are reported as obtained."), "",
              f"Feature cache: {'; '.join(cache_lines)}. Whole run {seconds:.0f} s."]
    text = "\n".join(lines) + "\n"
    (results / f"zeroshot_text{suffix}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
