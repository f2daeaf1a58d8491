import numpy as np

raise RuntimeError("this module fails on import")


def backward_pass(all_weights, all_biases, all_f, all_h, y):
    return np.zeros(1)
