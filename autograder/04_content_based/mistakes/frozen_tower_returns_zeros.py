# Ignores its vectors and returns zeros: it cannot train, but it must not earn "does not train" for it.
def frozen_tower(vectors):
    width = vectors.shape[1]
    return tf.keras.Sequential([tf.keras.layers.Lambda(lambda ids: tf.zeros((tf.shape(ids)[0], width)))])
