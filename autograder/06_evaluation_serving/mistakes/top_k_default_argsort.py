# Mistake: sorts with argsort's default kind (quicksort), which is not stable, so equal
# scores may come out in any order instead of by row number.
def blocked_top_k(queries, candidates, k, block):
    best_scores = np.empty((len(queries), 0))
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(candidates), block):
        scores = queries @ candidates[start : start + block].T
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        joined_scores = np.concatenate([best_scores, scores], axis=1)
        joined_rows = np.concatenate([best_rows, rows], axis=1)
        order = np.argsort(-joined_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(joined_scores, order, axis=1)
        best_rows = np.take_along_axis(joined_rows, order, axis=1)
    return best_rows
