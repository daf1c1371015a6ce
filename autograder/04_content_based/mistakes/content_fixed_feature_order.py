# Mistake: loops over the features in a fixed order, where the result follows the
# order of the vocabularies dict's keys.
def content_vectors(items, vocabularies):
    table = items.set_index("item_no")
    parts = []
    for feature in ["gender_description", "brand", "product_group"]:
        vocabulary = vocabularies[feature]
        bucketed = table[feature].where(table[feature].isin(vocabulary), "other")
        dummies = pd.get_dummies(pd.Categorical(bucketed, categories=[*vocabulary, "other"]), dtype="float32")
        dummies.columns = [f"{feature}={value}" for value in dummies.columns]
        dummies.index = table.index
        parts.append(dummies)
    return pd.concat(parts, axis=1)
