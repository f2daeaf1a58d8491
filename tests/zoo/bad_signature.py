def backward_pass(all_weights, all_biases):
    return [], []
