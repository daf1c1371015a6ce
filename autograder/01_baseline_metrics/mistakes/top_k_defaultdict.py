# Right, counting hits into a collections.defaultdict, which is a dict. Correct answers earn full marks.
from collections import defaultdict


def top_k_accuracy(true_ids, retrieved_ids, ks):
    hits = defaultdict(float)
    for true_id, ranked in zip(true_ids, retrieved_ids):
        ranked = list(ranked)
        first = ranked.index(true_id) if true_id in ranked else float("inf")
        for k in ks:
            hits[k] += first < k
    rows = len(true_ids)
    accuracy = defaultdict(float)
    for k in ks:
        accuracy[k] = hits[k] / rows if rows else 0.0
    return accuracy
