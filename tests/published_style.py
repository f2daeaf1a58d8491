"""Notebooks written for the tests in the style of the published notebook 7.2 (solved by us, not copied):
sum-of-squares loss, ``backward_pass`` reading the global ``K``, ``all_h`` of K+1 entries with the output
in ``all_f[K]``, IPython lines, and a print cell of the kind that raises TypeError on NumPy 2."""

from __future__ import annotations

import nbformat
import numpy as np
from nbformat import v4

IMPORTS = "import numpy as np\n%matplotlib inline"

NETWORK = """\
np.random.seed(0)
K = 5
D = 6
D_i = 1
D_o = 1
all_weights = [None] * (K+1)
all_biases = [None] * (K+1)
all_weights[0] = np.random.normal(size=(D, D_i))
all_weights[-1] = np.random.normal(size=(D_o, D))
all_biases[0] = np.random.normal(size =(D,1))
all_biases[-1]= np.random.normal(size =(D_o,1))
for layer in range(1,K):
  all_weights[layer] = np.random.normal(size=(D,D))
  all_biases[layer] = np.random.normal(size=(D,1))"""

FORWARD = """\
def ReLU(preactivation):
  return preactivation.clip(0.0)

def compute_network_output(net_input, all_weights, all_biases):
  K = len(all_weights) -1
  all_f = [None] * (K+1)
  all_h = [None] * (K+1)
  all_h[0] = net_input
  for layer in range(K):
      all_f[layer] = all_biases[layer] + np.matmul(all_weights[layer], all_h[layer])
      all_h[layer+1] = ReLU(all_f[layer])
  all_f[K] = all_biases[K] + np.matmul(all_weights[K], all_h[K])
  net_output = all_f[K]
  return net_output, all_f, all_h"""

RUN_FORWARD = """\
net_input = np.ones((D_i,1)) * 1.2
net_output, all_f, all_h = compute_network_output(net_input,all_weights, all_biases)
print("True output = %3.3f, Your answer = %3.3f"%(1.907, net_output[0,0]))"""

LOSS = """\
def least_squares_loss(net_output, y):
  return np.sum((net_output-y) * (net_output-y))

def d_loss_d_output(net_output, y):
    return 2*(net_output -y);"""

# On NumPy 2, "%3.3f" % of a (1, 1) array raises TypeError (only 0-d arrays convert to scalars).
PRINT_LOSS = """\
y = np.ones((D_o,1)) * 20.0
loss = least_squares_loss(net_output, y)
print("y = %3.3f Loss = %3.3f"%(y, loss))"""

BACKWARD = """\
def indicator_function(x):
  x_in = np.array(x)
  x_in[x_in>0] = 1
  x_in[x_in<=0] = 0
  return x_in

def backward_pass(all_weights, all_biases, all_f, all_h, y):
  all_dl_dweights = [None] * (K+1)
  all_dl_dbiases = [None] * (K+1)
  all_dl_df = [None] * (K+1)
  all_dl_dh = [None] * (K+1)
  all_dl_df[K] = np.array(d_loss_d_output(all_f[K],y))
  for layer in range(K,-1,-1):
    all_dl_dbiases[layer] = np.array(all_dl_df[layer])
    all_dl_dweights[layer] = np.matmul(all_dl_df[layer], all_h[layer].transpose())
    all_dl_dh[layer] = np.matmul(all_weights[layer].transpose(), all_dl_df[layer])
    if layer > 0:
      all_dl_df[layer-1] = indicator_function(all_f[layer-1]) * all_dl_dh[layer]
  return all_dl_dweights, all_dl_dbiases"""

IPYTHON = "!pip list\nnp.sum?\nresult = backward_pass(all_weights, all_biases, all_f, all_h, y)"

CELL_MAGIC = "%%bash\necho not Python"  # a cell magic whose body is not Python: skipped


def published_cells(*, forward=FORWARD, backward=BACKWARD, loss=LOSS):
    return [
        v4.new_markdown_cell("# Backpropagation"),
        v4.new_code_cell(IMPORTS),
        v4.new_code_cell(NETWORK),
        v4.new_code_cell(forward),
        v4.new_code_cell(RUN_FORWARD),
        v4.new_markdown_cell("Now a loss."),
        v4.new_code_cell(loss),
        v4.new_code_cell(PRINT_LOSS),
        v4.new_code_cell(backward),
        v4.new_code_cell(IPYTHON),
        v4.new_code_cell(CELL_MAGIC),
    ]


def write_notebook(path, cells):
    notebook = v4.new_notebook(cells=cells)
    with open(path, "w", encoding="utf-8") as file:
        nbformat.write(notebook, file)
    return path


def numpy_2_refuses_formatting_a_matrix() -> bool:
    """Whether the notebook's ``"%3.3f" % array`` print raises here (it does on NumPy 2)."""
    try:
        "%3.3f" % np.array([[1.0]])  # noqa: B018, UP031 (the notebook's own formatting)
    except TypeError:
        return True
    return False
