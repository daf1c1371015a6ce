# Mistake: compares the table with the true ids as a 1-d array, not a column: numpy
# lines them up with the columns, and raises when the shapes cannot broadcast.
def top_k_accuracy(true_ids, retrieved_ids, ks):
    return {k: float((retrieved_ids[:, :k] == true_ids).any(axis=1).mean()) for k in ks}
