#!/usr/bin/env python3
"""The bag-of-words baseline for the fortune-topic task (configs/fortune_topics_*.yaml): TF-IDF
of word 1-2 grams and logistic regression (scikit-learn), trained on exactly the records and split
that neutrino trains on (read through `neutrino data`, so both sides see the same texts).

    scripts/fortune_topics_baseline.py [--neutrino build/bin/neutrino] [--stratify]

--stratify splits each file's records on their own (configs/gpt_fortune_topics.yaml's split).

Prints one JSON object: macro_f1 and accuracy on the test split, and the split sizes."""
import argparse
import json
import subprocess

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

TOPICS = "[computers, science, politics, love, food, sports]"


def records(neutrino, split, stratify):
    spec = "{fortunes: %s, split: %s, stratify: %s}" % (TOPICS, split, str(stratify).lower())
    out = subprocess.run([neutrino, "data", spec], check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--neutrino", default="build/bin/neutrino")
    parser.add_argument("--stratify", action="store_true")
    args = parser.parse_args()
    train_x, train_y = records(args.neutrino, "train", args.stratify)
    test_x, test_y = records(args.neutrino, "test", args.stratify)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    classifier = LogisticRegression(max_iter=2000, C=10.0)
    classifier.fit(vectorizer.fit_transform(train_x), train_y)
    predicted = classifier.predict(vectorizer.transform(test_x))
    print(json.dumps({"macro_f1": f1_score(test_y, predicted, average="macro"),
                      "accuracy": accuracy_score(test_y, predicted),
                      "train": len(train_x), "test": len(test_x)}))


if __name__ == "__main__":
    main()
