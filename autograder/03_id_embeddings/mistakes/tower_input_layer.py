# Right, with an explicit string Input and the table sized from the lookup itself. Correct answers earn full marks.
from __future__ import annotations


def make_id_tower(values, embedding_dim: int) -> tf.keras.Sequential:
    vocabulary = np.sort(pd.unique(pd.Series(values, dtype=str)))
    lookup = tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1, mask_token=None)
    return tf.keras.Sequential([
        tf.keras.Input(shape=(), dtype=tf.string),
        lookup,
        tf.keras.layers.Embedding(input_dim=lookup.vocabulary_size(), output_dim=embedding_dim),
    ])
