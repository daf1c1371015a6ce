# Mistake: leaves the accidental hits out with -inf; with their label 0 the cross-entropy
# computes 0 x inf, so the loss is NaN.
def logq_in_batch_loss(query_embeddings, candidate_embeddings, candidate_probabilities, candidate_ids):
    scores = tf.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
    scores -= tf.math.log(candidate_probabilities)[tf.newaxis, :]
    labels = tf.eye(tf.shape(scores)[0])
    accidental = tf.logical_and(tf.equal(candidate_ids[:, None], candidate_ids[None, :]), labels == 0)
    scores = tf.where(accidental, tf.fill(tf.shape(scores), -np.inf), scores)
    cross_entropy = tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum")
    return cross_entropy(labels, scores)
