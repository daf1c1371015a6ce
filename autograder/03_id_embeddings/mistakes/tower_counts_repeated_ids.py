# Mistake: sizes the table by the number of values, repeats included, not by the distinct ids.
def make_id_tower(values, embedding_dim):
    vocabulary = sorted(set(values))
    return tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1),
            tf.keras.layers.Embedding(len(values) + 1, embedding_dim),
        ]
    )
