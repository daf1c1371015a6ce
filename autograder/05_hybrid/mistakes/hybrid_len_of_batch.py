# Mistake: checks the batch with len(), which works eagerly but not on the symbolic
# tensors of graph mode, where model.fit runs compute_loss.
class HybridModel(tfrs.Model):
    def __init__(self, user_tower, item_tower, task):
        super().__init__()
        self.user_tower = user_tower
        self.item_tower = item_tower
        self.task = task

    def compute_loss(self, features, training=False):
        if len(features["user_no"]) == 0:
            raise ValueError("an empty batch")
        users = self.user_tower(features["user_no"])
        items = self.item_tower({name: features[name] for name in ITEM_FEATURES})
        return self.task(users, items, compute_metrics=not training)
