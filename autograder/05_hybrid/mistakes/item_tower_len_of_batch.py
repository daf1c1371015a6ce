# Mistake: checks with len() that every feature has a row per item, which works eagerly
# (and in check()'s first calls) but not on the symbolic tensors of graph mode, where
# model.fit runs the tower.
class ItemTower(tf.keras.Model):
    def __init__(self, item_ids, genders, brands, groups, id_dim=16, brand_dim=8, group_dim=5):
        super().__init__()

        def lookup_embedding(values, dim):
            lookup = tf.keras.layers.StringLookup(vocabulary=list(values), num_oov_indices=1)
            return tf.keras.Sequential([lookup, tf.keras.layers.Embedding(len(values) + 1, dim)])

        self.item_embedding = lookup_embedding(item_ids, id_dim)
        self.gender_one_hot = tf.keras.layers.StringLookup(
            vocabulary=list(genders), num_oov_indices=0, output_mode="one_hot"
        )
        self.brand_embedding = lookup_embedding(brands, brand_dim)
        self.group_embedding = lookup_embedding(groups, group_dim)

    def call(self, features):
        if len({len(features[name]) for name in ITEM_FEATURES}) != 1:
            raise ValueError("every feature needs one value per item")
        return tf.concat(
            [
                self.item_embedding(features["item_no"]),
                self.gender_one_hot(features["gender_description"]),
                self.brand_embedding(features["brand"]),
                self.group_embedding(features["product_group"]),
            ],
            axis=1,
        )
