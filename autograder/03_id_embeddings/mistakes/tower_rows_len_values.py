# Mistake: one row per value, repeats included and no row for unknown ids.
def make_id_tower(values, embedding_dim):
    vocabulary = sorted(set(values))
    return tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1),
            tf.keras.layers.Embedding(len(values), embedding_dim),
        ]
    )
