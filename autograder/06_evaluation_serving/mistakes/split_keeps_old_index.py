# Mistake: filters the rows but keeps their old index labels (no reset_index), so
# each table's index has gaps where rows were left out.
def split_by_month(interactions, last_train_month):
    train = interactions[interactions["first_interaction_month"] <= last_train_month]
    test = interactions[interactions["first_interaction_month"] > last_train_month]
    test = test[test["user_no"].isin(train["user_no"])]
    return train, test
