# Mistake: flattens the batch of ids with len(), which works eagerly (and in check()'s
# first calls) but not on the symbolic tensors of graph mode, where model.fit runs the tower.
class IdTower(tf.keras.Model):
    def __init__(self, vocabulary, embedding_dim):
        super().__init__()
        self.lookup = tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1)
        self.table = tf.keras.layers.Embedding(len(vocabulary) + 1, embedding_dim)

    def call(self, ids):
        ids = tf.reshape(ids, [len(ids)])
        return self.table(self.lookup(ids))


def make_id_tower(values, embedding_dim):
    return IdTower(np.unique(np.asarray(values, dtype=str)), embedding_dim)
