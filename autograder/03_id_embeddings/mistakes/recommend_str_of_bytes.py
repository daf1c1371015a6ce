# Mistake: turns the index's bytes into text with str(), which gives "b'item07'", not "item07".
def recommend(index, user_id, exclude_item_ids, k):
    exclusions = tf.constant([list(exclude_item_ids)], dtype=tf.string)
    _, item_ids = index.query_with_exclusions(tf.constant([user_id]), exclusions, k=k)
    return [str(item_id) for item_id in item_ids[0].numpy()]
