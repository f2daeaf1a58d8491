"""Notebook 7.2 in each template generation readers hold, solved by us (right and wrong), for the tests.

The published notebook changed between mid-2023 and early 2025 in ways that matter to a grader. What the
stored copies show (read through the code index; the copies carry commit ids but no dates, so the labels
below are approximate periods, ordered by what changed):

- the supplied ``indicator_function``: ``x_in>=0`` (ReLU'(0) = 1) at first, ``x_in>0`` (ReLU'(0) = 0) later;
- the finite-difference check: ``range(K)`` (the output layer's biases and weights never checked) at first,
  ``range(K+1)`` later (changed together with the indicator in the copies seen);
- its prints: the values only at first, then a line of dashes and "Success!  Derivatives match." /
  "Failure!  Derivatives different." after each parameter;
- the equations cited in comments: eqn 7.16 and eq 7.21 / 7.22 / 7.24 at first, eqn 7.17 and eq 7.22 /
  7.23 / 7.25 last (the book's numbering);
- in all of them ``print("y = %3.3f Loss = %3.3f"%(y, loss))`` formats a (1, 1) array: TypeError on NumPy 2.

Every generation here is written in the student's style (``backward_pass`` reads the global ``K``; ``all_h``
has K+1 entries; the output is ``all_f[K]``), solved right or wrong as ``VARIANTS`` lists, with the
generation's own indicator or the other convention written by the student (``indicator=``).
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat
from nbformat import v4


@dataclass(frozen=True)
class Generation:
    """One template generation: its indicator convention, FD-check layers, prints and equation numbers."""

    name: str
    description: str
    indicator: str  # "ge0": x >= 0 counted as on, ReLU'(0) = 1; "gt0": x > 0, ReLU'(0) = 0
    checks_output_layer: bool  # FD loop over range(K+1) rather than range(K)
    prints_verdicts: bool  # dashes and Success!/Failure! after each parameter
    forward_eqn: str
    backward_eqs: tuple[str, str, str]  # biases, weights, activations / pre-activations
    seen_at: tuple[str, ...]  # stored copies (repository@commit) showing this generation's cells


_GENERATIONS = (
    Generation("2023-07", "first release: indicator x>=0 (ReLU'(0)=1), FD check over range(K) (output layer "
               "unchecked), values printed without Success/Failure, eqn 7.16 / eq 7.21-7.24",
               "ge0", False, False, "7.16", ("7.21", "7.22", "7.24"), ("udlbook/udlbook@259f34e",)),
    Generation("2024-03", "x>=0 and range(K) still, but each parameter now ends with dashes and "
               "Success!/Failure!; eqn 7.16 / eq 7.21-7.24",
               "ge0", False, True, "7.16", ("7.21", "7.22", "7.24"),
               ("dwrank/udlbook@4d42b06", "muddlebee/udlbook@1df65cb", "pcagas/udlbook@d154fbd")),
    Generation("2024-09", "indicator x>0 (ReLU'(0)=0) and FD check over range(K+1) (output layer checked), "
               "equations not yet renumbered (eqn 7.16 / eq 7.21-7.24)",
               "gt0", True, True, "7.16", ("7.21", "7.22", "7.24"), ("HOCOOH/udlbook@58c8559",)),
    Generation("2025-01", "as published now: x>0, range(K+1), Success/Failure, equations renumbered "
               "(eqn 7.17 / eq 7.22, 7.23, 7.25)",
               "gt0", True, True, "7.17", ("7.22", "7.23", "7.25"),
               ("FrankHolzkamp/udlbook@822429a", "kai0511/udlbook@269eda2", "WSm-77/udlbook@3927d8b")),
)
BY_NAME = {generation.name: generation for generation in _GENERATIONS}
GENERATIONS = {generation.name: generation.description for generation in _GENERATIONS}
INDICATORS = {"ge0": "x >= 0 counted as on: ReLU'(0) = 1", "gt0": "x > 0 counted as on: ReLU'(0) = 0"}


@dataclass(frozen=True)
class Variant:
    """A way of solving the notebook. ``right``: every gradient right on the notebook's task (its network
    and the same family). ``agrees_at_seeded_network``: the notebook's own FD check passes.
    ``raises_when_d_i_differs``: only a case beyond the notebook (D_i != D_o) makes it fail.
    ``raises``: the notebook's own call of ``backward_pass`` raises."""

    name: str
    right: bool
    description: str
    agrees_at_seeded_network: bool = True
    raises_when_d_i_differs: bool = False
    raises: bool = False


VARIANTS = {v.name: v for v in (
    Variant("right", True, "the TODOs solved right, nothing else changed"),
    Variant("d_i_crash", True, "a branch taken only when D_i != D_o reshapes dl/df_K to the input's size and "
            "raises there; the notebook's network never reaches it", raises_when_d_i_differs=True),
    Variant("inplace_all_h", True, "backward_pass transposes the caller's all_h entries in place (all_h[k] = "
            "all_h[k].T) and uses them; every gradient right"),
    Variant("empty_cells", True, "empty and blank code cells and an empty markdown cell between the others"),
    Variant("debug_prints", True, "prints inside compute_network_output and backward_pass"),
    Variant("extra_kwarg", True, "backward_pass(..., verbose=False): an extra keyword argument, defaulted"),
    Variant("rebinds_globals", True, "a last cell of unrelated work rebinds K, D, D_i and y after the check"),
    Variant("no_relu_mask", False, "dl/df_{k-1} = dl/dh_k: the ReLU's derivative left out",
            agrees_at_seeded_network=False),
    Variant("mask_inverted", False, "the ReLU mask applied as f < 0 (the units that are off)",
            agrees_at_seeded_network=False),
    Variant("missing_transpose", False, "dl/dW_k = dl/df_k h_k without the transpose of h_k: a shape error "
            "in the notebook's own call", agrees_at_seeded_network=False, raises=True),
    Variant("factor_2_dropped", False, "dl/df_K = f_K - y: the loss's factor 2 dropped",
            agrees_at_seeded_network=False),
    Variant("relu_after_last", False, "the ReLU mask also applied at the output (as if a ReLU followed the "
            "last layer): right on the seeded network (output 1.907 > 0), wrong where the output is < 0"),
)}
RIGHT_VARIANTS = tuple(name for name, variant in VARIANTS.items() if variant.right)
WRONG_VARIANTS = tuple(name for name, variant in VARIANTS.items() if not variant.right)

# Lines a right solution prints, whatever the generation (the loss line only where NumPy < 2 formats it).
OUTPUT_LINE = "True output = 1.907, Your answer = 1.907"
LOSS_LINE = "y = 20.000 Loss = 327.371"
LOSS_PRINT = 'print("y = %3.3f Loss = %3.3f"%(y, loss))'
SUCCESS = "Success!  Derivatives match."
FAILURE = "Failure!  Derivatives different."
K_NOTEBOOK = 5


def fd_layers(generation: str) -> int:
    """How many layers the generation's finite-difference check covers (K or K+1 of the K+1)."""
    return K_NOTEBOOK + 1 if BY_NAME[generation].checks_output_layer else K_NOTEBOOK


def success_lines(generation: str) -> int:
    """How many Success lines a right solution prints in this generation (biases and weights per layer)."""
    return 2 * fd_layers(generation) if BY_NAME[generation].prints_verdicts else 0


IMPORTS = "import numpy as np\nimport matplotlib.pyplot as plt"

NETWORK = """\
# The same random network every time
np.random.seed(0)

# Number of {layers}
K = 5
# Number of neurons per layer
D = 6
# Input layer
D_i = 1
# Output layer
D_o = 1

all_weights = [None] * (K+1)
all_biases = [None] * (K+1)

# Input and output layers first
all_weights[0] = np.random.normal(size=(D, D_i))
all_weights[-1] = np.random.normal(size=(D_o, D))
all_biases[0] = np.random.normal(size =(D,1))
all_biases[-1]= np.random.normal(size =(D_o,1))

# Then the layers in between
for layer in range(1,K):
  all_weights[layer] = np.random.normal(size=(D,D))
  all_biases[layer] = np.random.normal(size=(D,1))"""

RELU = """\
# The ReLU
def ReLU(preactivation):
  return preactivation.clip(0.0)"""

RUN_FORWARD = """\
net_input = np.ones((D_i,1)) * 1.2
net_output, all_f, all_h = compute_network_output(net_input,all_weights, all_biases)
print("True output = %3.3f, Your answer = %3.3f"%(1.907, net_output[0,0]))"""

LOSS = """\
def least_squares_loss(net_output, y):
  return np.sum((net_output-y) * (net_output-y))

def d_loss_d_output(net_output, y):
    return 2*(net_output -y);"""

PRINT_LOSS = f"""\
y = np.ones((D_o,1)) * 20.0
loss = least_squares_loss(net_output, y)
{LOSS_PRINT}"""

CALL_BACKWARD = "all_dl_dweights, all_dl_dbiases = backward_pass(all_weights, all_biases, all_f, all_h, y)"

# The supplied helper, as each convention wrote it, and as a student writes their own.
TEMPLATE_INDICATOR = {
    "ge0": "def indicator_function(x):\n  x_in = np.array(x)\n  x_in[x_in>=0] = 1\n  x_in[x_in<0] = 0\n"
           "  return x_in",
    "gt0": "def indicator_function(x):\n  x_in = np.array(x)\n  x_in[x_in>0] = 1\n  x_in[x_in<=0] = 0\n"
           "  return x_in",
}
STUDENT_INDICATOR = {
    "ge0": "# my own: on where f >= 0\ndef indicator_function(x):\n"
           "  return (np.asarray(x) >= 0).astype(float)",
    "gt0": "# my own: on where f > 0\ndef indicator_function(x):\n"
           "  return np.where(np.asarray(x) > 0, 1.0, 0.0)",
}

UNRELATED_EXPERIMENT = """\
# Something else: a straight line fitted by gradient descent (reuses the names K, D, D_i and y)
K = 2
D = 4
D_i = 3
x_data = np.linspace(-1, 1, 20).reshape(1, -1)
y = 3.0 * x_data + 0.5
slope, offset = 0.0, 0.0
for step in range(200):
  residual = slope * x_data + offset - y
  slope -= 0.1 * np.mean(2 * residual * x_data)
  offset -= 0.1 * np.mean(2 * residual)
print("fitted slope %.2f offset %.2f" % (slope, offset))"""


def _forward(generation: Generation, variant: str) -> str:
    todo = "TO DO" if generation.name == "2023-07" else "TODO"
    debug = "\n  print('output', all_f[K].shape)" if variant == "debug_prints" else ""
    return f"""\
def compute_network_output(net_input, all_weights, all_biases):

  # Retrieve number of layers
  K = len(all_weights) -1

  # pre-activations f_0..f_K and activations h_0..h_K
  all_f = [None] * (K+1)
  all_h = [None] * (K+1)
  all_h[0] = net_input

  for layer in range(K):
      # {todo} -- according to eqn {generation.forward_eqn}
      all_f[layer] = all_biases[layer] + np.matmul(all_weights[layer], all_h[layer])
      all_h[layer+1] = ReLU(all_f[layer])

  # the output: no ReLU after the last layer
  all_f[K] = all_biases[K] + np.matmul(all_weights[K], all_h[K]){debug}

  net_output = all_f[K]
  return net_output, all_f, all_h"""


def _backward(generation: Generation, variant: str) -> str:
    eq_b, eq_w, eq_h = generation.backward_eqs
    extra = ", verbose=False" if variant == "extra_kwarg" else ""
    output = {"factor_2_dropped": "all_dl_df[K] = all_f[K] - y",
              "relu_after_last": "all_dl_df[K] = indicator_function(all_f[K]) * d_loss_d_output(all_f[K],y)",
              }.get(variant, "all_dl_df[K] = np.array(d_loss_d_output(all_f[K],y))")
    weights = {"missing_transpose": "np.matmul(all_dl_df[layer], all_h[layer])",
               "inplace_all_h": "np.matmul(all_dl_df[layer], all_h[layer])",
               }.get(variant, "np.matmul(all_dl_df[layer], all_h[layer].transpose())")
    mask = {"no_relu_mask": "np.array(all_dl_dh[layer])",
            "mask_inverted": "(all_f[layer-1] < 0) * all_dl_dh[layer]",
            }.get(variant, "indicator_function(all_f[layer-1]) * all_dl_dh[layer]")
    lines = [
        "# Main backward pass routine",
        f"def backward_pass(all_weights, all_biases, all_f, all_h, y{extra}):",
        "  all_dl_dweights = [None] * (K+1)",
        "  all_dl_dbiases = [None] * (K+1)",
        "  all_dl_df = [None] * (K+1)",
        "  all_dl_dh = [None] * (K+1)",
        "",
        "  # derivative of the loss with respect to the output all_f[K]",
        f"  {output}",
    ]
    if variant == "d_i_crash":
        lines += ["  if all_weights[0].shape[1] != all_weights[K].shape[0]:",
                  "    # input and output of different sizes: line dl/df_K up with the input",
                  "    all_dl_df[K] = all_dl_df[K].reshape(all_weights[0].shape[1], 1)"]
    lines += ["", "  for layer in range(K,-1,-1):"]
    if variant == "debug_prints":
        lines.append("    print('layer', layer, all_dl_df[layer].shape)")
    if variant == "extra_kwarg":
        lines += ["    if verbose:", "      print('layer', layer)"]
    lines += [f"    # biases (eq {eq_b})", "    all_dl_dbiases[layer] = np.array(all_dl_df[layer])"]
    if variant == "inplace_all_h":
        lines += ["    all_h[layer] = all_h[layer].T  # a row now"]
    lines += [
        f"    # weights (eq {eq_w})",
        f"    all_dl_dweights[layer] = {weights}",
        f"    # activations (second part of the last line of eq {eq_h})",
        "    all_dl_dh[layer] = np.matmul(all_weights[layer].transpose(), all_dl_df[layer])",
        "    if layer > 0:",
        f"      # through the ReLU (first part of the last line of eq {eq_h})",
        f"      all_dl_df[layer-1] = {mask}",
        "",
        "  return all_dl_dweights, all_dl_dbiases",
    ]
    return "\n".join(lines)


def _fd_check(generation: Generation) -> str:
    layers = "K+1" if generation.checks_output_layer else "K"
    verdicts = generation.prints_verdicts
    dashes = '  print("-----------------------------------------------")\n' if verdicts else ""

    def report(kind: str, ours: str, theirs: str) -> str:
        verdict = (f"  if np.allclose({theirs}[layer], {ours}[layer], rtol=1e-05, atol=1e-08):\n"
                   f'    print("{SUCCESS}")\n  else:\n    print("{FAILURE}")\n') if verdicts else ""
        return (f'{dashes}  print("{kind} %d, derivatives from backprop:"%(layer))\n'
                f"  print({ours}[layer])\n"
                f'  print("{kind} %d, derivatives from finite differences"%(layer))\n'
                f"  print({theirs}[layer])\n{verdict}")

    return f"""\
np.set_printoptions(precision=3)
all_dl_dweights_fd = [None] * (K+1)
all_dl_dbiases_fd = [None] * (K+1)

# one-sided finite differences, one parameter at a time
delta_fd = 0.000001
loss_here = least_squares_loss(compute_network_output(net_input, all_weights, all_biases)[0], y)

for layer in range({layers}):
  dl_dbias = np.zeros_like(all_dl_dbiases[layer])
  for row in range(all_biases[layer].shape[0]):
    shifted = [np.array(b) for b in all_biases]
    shifted[layer][row] += delta_fd
    out, *_ = compute_network_output(net_input, all_weights, shifted)
    dl_dbias[row] = (least_squares_loss(out, y) - loss_here) / delta_fd
  all_dl_dbiases_fd[layer] = np.array(dl_dbias)
{report("Bias", "all_dl_dbiases", "all_dl_dbiases_fd")}
for layer in range({layers}):
  dl_dweight = np.zeros_like(all_dl_dweights[layer])
  for row in range(all_weights[layer].shape[0]):
    for col in range(all_weights[layer].shape[1]):
      shifted = [np.array(w) for w in all_weights]
      shifted[layer][row][col] += delta_fd
      out, *_ = compute_network_output(net_input, shifted, all_biases)
      dl_dweight[row][col] = (least_squares_loss(out, y) - loss_here) / delta_fd
  all_dl_dweights_fd[layer] = np.array(dl_dweight)
{report("Weight", "all_dl_dweights", "all_dl_dweights_fd")}"""


def indicator_source(generation: str, indicator: str | None = None) -> str:
    """The cell's ``indicator_function``: the generation's own (None or its convention) or the student's own
    of the other convention."""
    native = BY_NAME[generation].indicator
    if indicator is None or indicator == native:
        return "# We'll need the indicator function\n" + TEMPLATE_INDICATOR[native]
    if indicator not in STUDENT_INDICATOR:
        raise ValueError(f"indicator must be one of {sorted(STUDENT_INDICATOR)} or None, not {indicator!r}")
    return STUDENT_INDICATOR[indicator]


def cells(generation: str, *, indicator: str | None = None, variant: str = "right") -> list:
    """The notebook's cells (nbformat v4 nodes) for ``generation`` solved as ``variant``."""
    if generation not in BY_NAME:
        raise ValueError(f"generation must be one of {sorted(BY_NAME)}, not {generation!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    gen = BY_NAME[generation]
    layers = "layers" if generation == "2023-07" else "hidden layers"
    code, markdown = v4.new_code_cell, v4.new_markdown_cell
    result = [
        markdown(f"# **Notebook 7.2: Backpropagation** (template of {generation})"),
        code(IMPORTS),
        markdown("First a neural network, with random weights and biases."),
        code(NETWORK.format(layers=layers)),
        code(RELU),
        markdown("Now run the network, storing the pre-activations and activations."),
        code(_forward(gen, variant)),
        code(RUN_FORWARD),
        markdown("A least squares loss and its derivative."),
        code(LOSS),
        code(PRINT_LOSS),
        markdown("The backward pass."),
        code(indicator_source(generation, indicator) + "\n\n" + _backward(gen, variant)),
        code(CALL_BACKWARD),
        code(_fd_check(gen)),
    ]
    if variant == "empty_cells":
        result[4:4] = [code(""), markdown("")]
        result.insert(-2, code("  \n\n"))
        result.append(code(""))
    if variant == "rebinds_globals":
        result.append(code(UNRELATED_EXPERIMENT))
    return result


def notebook(generation: str, *, indicator: str | None = None, variant: str = "right"):
    """The whole notebook (an nbformat v4 node), metadata saying which generation and variant it is."""
    node = v4.new_notebook(cells=cells(generation, indicator=indicator, variant=variant))
    node.metadata["template_generation"] = {"generation": generation, "variant": variant,
                                            "indicator": indicator or BY_NAME[generation].indicator}
    node.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return node


def write(path, node):
    """Write the notebook ``node`` to ``path`` (as nbformat v4 JSON); return ``path``."""
    with open(path, "w", encoding="utf-8") as file:
        nbformat.write(node, file)
    return path


def right_cases():
    """Every (generation, indicator, variant) solved right: each generation with both conventions."""
    return [(g, i, v) for g in GENERATIONS for i in INDICATORS for v in RIGHT_VARIANTS]


def wrong_cases():
    """Every (generation, indicator, variant) solved wrong, each with the generation's own indicator."""
    return [(g, BY_NAME[g].indicator, v) for g in GENERATIONS for v in WRONG_VARIANTS]
