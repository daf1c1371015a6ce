# Mistake: keeps the unseen ids but does not pad a short row with "" to length k.
def exclude_seen(retrieved_ids, seen_ids, k):
    rows = []
    for row, seen in zip(retrieved_ids, seen_ids):
        rows.append([item for item in row if item not in seen][:k])
    return np.array(rows)
