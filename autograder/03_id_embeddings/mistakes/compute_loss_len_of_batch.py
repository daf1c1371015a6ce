# Mistake: checks the batch with len(), which works eagerly but not on the symbolic
# tensors of graph mode, where model.fit runs compute_loss.
class IdModel(tfrs.Model):
    def __init__(self, user_model, item_model, task):
        super().__init__()
        self.user_model = user_model
        self.item_model = item_model
        self.task = task

    def compute_loss(self, features, training=False):
        if len(features["user_no"]) != len(features["item_no"]):
            raise ValueError("every row needs one user and one item")
        users = self.user_model(features["user_no"])
        items = self.item_model(features["item_no"])
        return self.task(users, items, compute_metrics=not training)
