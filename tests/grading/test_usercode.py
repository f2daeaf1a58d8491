"""User code never escapes the grader: time limits, sys.exit, odd exceptions, stdout, process state."""

# ruff: noqa: NPY002  (user code that plays with the legacy random stream, on purpose)

from __future__ import annotations

import io
import os
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from manual_backprop.user_globals import globals_note, globals_read, network_globals
from manual_backprop.usercode import (
    call_user,
    safe_str,
)

K = 5  # a notebook-style global, read by the functions below


def reads_k(all_weights):
    return [None] * (K + 1)


def helper_reads_k():
    return K


def calls_a_helper(all_weights):
    return helper_reads_k()


def test_a_sleeping_function_hits_the_time_limit():
    start = time.monotonic()
    result = call_user(time.sleep, (30,), timeout=0.2)
    assert result.status == "timeout" and result.error == "did not return within 0.2 s"
    assert time.monotonic() - start < 5


def test_a_looping_function_hits_the_time_limit_even_with_a_bare_except():
    def loops():
        while True:
            try:
                sum(range(100))
            except:  # noqa: E722 (the user swallows everything, our alarm included: it comes again)
                pass

    result = call_user(loops, timeout=0.2)
    assert result.status == "timeout"


def test_the_time_limit_works_off_the_main_thread():
    results = []
    worker = threading.Thread(target=lambda: results.append(call_user(time.sleep, (30,), timeout=0.2)))
    worker.start()
    worker.join(10)
    assert results and results[0].status == "timeout"


def test_a_function_that_returns_in_time_returns_its_value():
    result = call_user(lambda a, b: a + b, (1, 2), timeout=5)
    assert result.ok and result.value == 3 and result.error is None


def test_writes_to_file_descriptor_1_go_to_stderr(capfd):
    def noisy():
        os.write(1, b"raw fd 1\n")
        sys.__stdout__.write("dunder stdout\n")
        print("plain print")
        return 7

    print("ours before", flush=True)
    assert call_user(noisy).value == 7
    print("ours after", flush=True)
    out, err = capfd.readouterr()
    assert out == "ours before\nours after\n"
    for text in ("raw fd 1", "dunder stdout", "plain print"):
        assert text in err


@pytest.mark.parametrize(("code", "shown"), [(3, "called sys.exit(3)"), (None, "called sys.exit()"),
                                             ("bye", "called sys.exit('bye')")])
def test_sys_exit_is_a_failed_call_that_names_it(code, shown):
    result = call_user(sys.exit, (code,))
    assert result.status == "exit" and result.error == shown


def test_an_exception_whose_str_raises_does_not_escape():
    class Nasty(ValueError):
        def __str__(self):
            raise RuntimeError("no")

    def raises():
        raise Nasty

    result = call_user(raises)
    assert result.status == "raised" and result.error_type == "Nasty"
    assert result.error.startswith("raised Nasty: <unprintable Nasty> (at test_usercode.py:")
    assert safe_str(Nasty()) == "<unprintable Nasty>"


def test_a_returned_object_whose_len_raises_is_read_through_call_user():
    class Weird(list):
        def __len__(self):
            raise ValueError("len says no")

    returned = call_user(lambda: Weird())
    assert returned.ok
    measured = call_user(len, (returned.value,))  # reading a user's object is calling user code
    assert measured.status == "raised" and "len says no" in measured.error


def test_keyboard_interrupt_goes_through():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_user(interrupted)


def test_the_users_line_is_named():
    def broken(x):
        return x[10]

    result = call_user(broken, ([1],))
    assert result.error.startswith("raised IndexError: list index out of range (at test_usercode.py:")
    assert result.error.endswith("return x[10])")


def test_process_state_is_put_back(tmp_path):
    import jax

    before = (np.geterr(), np.get_printoptions(), np.random.get_state()[1].copy(), os.getcwd(),
              list(sys.path), list(warnings.filters), sys.stdout, jax.config.jax_enable_x64)

    def meddles():
        np.seterr(all="raise")
        np.set_printoptions(precision=2, suppress=True)
        np.random.seed(1)
        os.chdir(tmp_path)
        sys.path.insert(0, str(tmp_path))
        warnings.simplefilter("error")
        sys.stdout = io.StringIO()
        jax.config.update("jax_enable_x64", not jax.config.jax_enable_x64)
        raise ValueError("and then fails")

    assert call_user(meddles).status == "raised"
    after = (np.geterr(), np.get_printoptions(), np.random.get_state()[1], os.getcwd(), list(sys.path),
             list(warnings.filters), sys.stdout, jax.config.jax_enable_x64)
    assert after[:2] == before[:2]
    np.testing.assert_array_equal(after[2], before[2])
    assert after[3:] == before[3:]


def test_network_globals_are_set_for_the_call_and_put_back():
    weights = [np.zeros((4, 3)), np.zeros((4, 4)), np.zeros((2, 4))]
    values = network_globals(weights)
    assert values == {"K": 2, "D_i": 3, "D_o": 2, "D": 4}
    result = call_user(reads_k, (weights,), globals_to_set=values)
    assert result.ok and len(result.value) == 3 and result.globals_set == ("K",)
    assert K == 5
    assert call_user(calls_a_helper, (weights,), globals_to_set=values).value == 2  # the helper's K too
    assert "D" not in network_globals([np.zeros((4, 3)), np.zeros((5, 4)), np.zeros((2, 5))])


def test_a_global_the_module_lacks_is_set_then_removed():
    namespace = {}
    exec("def f(w):\n    return D_o", namespace)  # noqa: S102
    result = call_user(namespace["f"], ([],), globals_to_set={"D_o": 3})
    assert result.value == 3 and "D_o" not in namespace


def test_any_other_missing_global_is_named():
    namespace = {}
    exec("def backward_pass(w):\n    return indicator_function(w)", namespace)  # noqa: S102
    result = call_user(namespace["backward_pass"], ([],), globals_to_set={"K": 1})
    assert result.status == "raised" and result.globals_set == ()
    assert "reads the global 'indicator_function', which its file or notebook does not define" in result.error


def test_globals_read_sees_loads_not_attributes():
    namespace = {}
    exec("import numpy as np\ndef f(x):\n    y = x.K\n    return [np.D for _ in range(K)]", namespace)  # noqa: S102
    assert {"K", "np", "range"} <= globals_read(namespace["f"]) and "D" not in globals_read(namespace["f"])


def test_the_globals_note():
    assert globals_note("backward_pass", ("K",)) == (
        "backward_pass reads the global K; it was set to each network's depth. K = len(all_weights) - 1 "
        "inside the function makes it self-contained.")
    assert globals_note("f", ("D_o", "K")).startswith("f reads the globals K and D_o; they were set to each "
                                                      "network's depth and output size.")
    assert globals_note("f", ()) is None
