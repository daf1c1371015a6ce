# Mistake: divides the task's loss by the batch size; the task already gives the batch's summed loss.
class IdModel(tfrs.Model):
    def __init__(self, user_model, item_model, task):
        super().__init__()
        self.user_model = user_model
        self.item_model = item_model
        self.task = task

    def compute_loss(self, features, training=False):
        users = self.user_model(features["user_no"])
        items = self.item_model(features["item_no"])
        loss = self.task(users, items, compute_metrics=not training)
        return loss / tf.cast(tf.shape(users)[0], loss.dtype)
