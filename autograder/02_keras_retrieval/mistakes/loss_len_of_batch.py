# Mistake: sizes the labels with len(), which works eagerly but not on the symbolic
# tensors of graph mode, where model.fit runs the loss.
def in_batch_softmax_loss(query_embeddings, candidate_embeddings):
    scores = tf.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
    labels = tf.eye(len(query_embeddings))
    return tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=scores))
