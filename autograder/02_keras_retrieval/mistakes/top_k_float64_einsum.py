# Right, in float64 with einsum for the true scores and one matrix product; numpy floats come back. Correct answers earn full marks.
def factorized_top_k_accuracy(query_embeddings, true_candidate_embeddings, candidate_embeddings, ks):
    queries = np.asarray(query_embeddings, dtype=np.float64)
    if queries.shape[0] == 0:
        return dict.fromkeys(ks, 0.0)
    true_scores = np.einsum("ij,ij->i", queries, np.asarray(true_candidate_embeddings, dtype=np.float64))
    scores = queries @ np.asarray(candidate_embeddings, dtype=np.float64).T
    higher = np.count_nonzero(scores > true_scores[:, None], axis=1)
    return {k: np.mean(higher < k) for k in ks}
