# Right, an index with no query model, called with the users' vectors. Correct answers earn full marks.
def top_k_through_index(user_tower, item_tower, item_ids, user_ids, k):
    item_ids = [str(item) for item in item_ids]
    index = tfrs.layers.factorized_top_k.BruteForce()
    index.index(item_tower(tf.constant(item_ids)), tf.constant(item_ids))
    _, top_ids = index(user_tower(tf.constant([str(user) for user in user_ids])), k=k)
    return np.array([[item.decode() for item in row] for row in top_ids.numpy()])
