# Mistake: adds up the rows with a Python loop over a tensor. It works eagerly, and a
# tf.function of this function alone would convert the loop (AutoGraph), but the lesson's
# fit calls the loss from train_step, which AutoGraph leaves as written: there the loop
# cannot iterate over the symbolic batch and fit fails.
def in_batch_softmax_loss(query_embeddings, candidate_embeddings):
    scores = tf.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
    total = tf.constant(0.0)
    for row in tf.range(tf.shape(scores)[0]):
        total += tf.reduce_logsumexp(scores[row]) - scores[row, row]
    return total
