# Mistake: sorts the rows by item_no, where the result keeps the order of `items`.
def content_vectors(items, vocabularies):
    table = items.set_index("item_no").sort_index()
    parts = []
    for feature in vocabularies:
        vocabulary = vocabularies[feature]
        bucketed = table[feature].where(table[feature].isin(vocabulary), "other")
        dummies = pd.get_dummies(pd.Categorical(bucketed, categories=[*vocabulary, "other"]), dtype="float32")
        dummies.columns = [f"{feature}={value}" for value in dummies.columns]
        dummies.index = table.index
        parts.append(dummies)
    return pd.concat(parts, axis=1)
