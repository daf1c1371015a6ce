# Mistake: averages the per-row shares with np.mean, which gives NaN (not 0.0) for no rows.
def recall_at_k(approximate_ids, exact_ids):
    shares = [len(set(a) & set(e)) / len(e) for a, e in zip(approximate_ids, exact_ids)]
    return float(np.mean(shares))
