# Mistake: averages the chunks' accuracies, so the smaller last chunk weighs as much as a full one.
def factorized_top_k_accuracy(query_embeddings, true_candidate_embeddings, candidate_embeddings, ks):
    accuracies = {k: [] for k in ks}
    for start in range(0, len(query_embeddings), 1000):
        chunk = query_embeddings[start : start + 1000]
        true_scores = np.sum(chunk * true_candidate_embeddings[start : start + 1000], axis=1, keepdims=True)
        higher = (chunk @ candidate_embeddings.T > true_scores).sum(axis=1)
        for k in ks:
            accuracies[k].append(np.mean(higher < k))
    return {k: float(np.mean(values)) if values else 0.0 for k, values in accuracies.items()}
