"""The worker machinery on its own: the wire format refuses what is not plain data, a Session's loads and
calls keep their limits from outside, a dead worker is replaced, nothing outlives ``close``, and the proxy
namespace answers as the in-process one does (functions, plain values, the globals a function reads)."""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import struct
import textwrap
import time

import numpy as np
import pytest

from manual_backprop.grading import wire
from manual_backprop.grading.isolation import RemoteFunction, Session, UserCodeError
from manual_backprop.grading.loading import LoadError
from manual_backprop.usercode import call_user
from sandbox_helpers import bwrap_problem


def _pair():
    a, b = socket.socketpair()
    return a, b


def test_values_round_trip_as_plain_data():
    value = [np.arange(6.0).reshape(2, 3), (1, 2.5, None, "x", True), {"k": np.float32(3)}, float("nan")]
    arrays: list = []
    node = wire.encode(value, arrays)
    back = wire.decode(node, arrays)
    assert (back[0] == value[0]).all() and back[1] == (1, 2.5, None, "x", True)
    assert back[2]["k"] == 3 and np.isnan(back[3])


def test_what_cannot_be_sent_comes_back_as_an_unreadable_object_that_says_why():
    class Strange:
        def __array__(self, *a, **k):
            raise RuntimeError("no")

    arrays: list = []
    back = wire.decode(wire.encode([Strange(), np.array([object()])], arrays), arrays)
    assert type(back[0]).__name__ == "Strange"
    with pytest.raises(TypeError, match="RuntimeError: no"):
        np.asarray(back[0])
    with pytest.raises(TypeError, match="Python objects"):
        len(back[1])


def test_the_reader_refuses_pickles_and_oversized_messages():
    blob = io.BytesIO()
    np.save(blob, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = blob.getvalue()
    header = json.dumps({"blobs": [len(data)]}).encode()
    cases = [(struct.pack("!Q", len(header)) + header + data, "not a plain .npy"),
             (struct.pack("!Q", 2**40), "limit"),
             (struct.pack("!Q", len(pickle.dumps({"blobs": []}))) + pickle.dumps({"blobs": []}), "not JSON"),
             (struct.pack("!Q", 14) + b'{"blobs": [1]}', "connection was closed")]
    for message, error in cases:  # after a broken message the connection is dropped: one pair each
        ours, theirs = _pair()
        theirs.sendall(message)
        theirs.close()
        with pytest.raises(wire.WireError, match=error):
            wire.receive(ours, time.monotonic() + 5)


def test_a_silent_sender_times_out():
    ours, _theirs = _pair()
    started = time.monotonic()
    with pytest.raises(wire.WireTimeout):
        wire.receive(ours, time.monotonic() + 0.3)
    assert time.monotonic() - started < 2


def _file(tmp_path, body: str) -> str:
    path = tmp_path / "sub.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_an_import_that_hangs_in_c_or_crashes_is_a_load_error_with_its_cause(tmp_path):
    hang = _file(tmp_path, """\
        import signal, time
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
        def f(a, b, c, d, e): pass
        """)
    started = time.monotonic()
    with Session(echo=None) as session, pytest.raises(LoadError, match="did not finish within 0.5 s"):
        session.load(f"{hang}:f", timeout=0.5)
    assert time.monotonic() - started < 20
    crash = _file(tmp_path, "import ctypes\nctypes.string_at(0)\n")
    with Session(echo=None) as session, pytest.raises(LoadError, match="SIGSEGV"):
        session.load(f"{crash}:f")


def test_load_errors_name_the_users_path_not_the_workers_copy(tmp_path):
    path = _file(tmp_path, "x = 1\n")
    with Session(echo=None) as session, pytest.raises(LoadError) as caught:
        session.load(f"{path}:backward_pass")
    assert str(caught.value) == f"--backward: {path} has no 'backward_pass'"


def test_a_call_past_its_limit_stops_the_worker_and_the_next_call_gets_a_fresh_one(tmp_path):
    path = _file(tmp_path, """\
        import signal, time
        calls = []
        def f(a, b, c, d, e):
            calls.append(1)
            if a == "hang":
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
                while True:
                    pass
            return len(calls)
        """)
    with Session(echo=None) as session:
        proxy = session.load(f"{path}:f").function
        assert call_user(proxy, (0, 0, 0, 0, 0), timeout=5).value == 1
        started = time.monotonic()
        stuck = call_user(proxy, ("hang", 0, 0, 0, 0), timeout=0.3)
        assert stuck.status == "timeout" and "did not return within 0.3 s" in stuck.error
        assert time.monotonic() - started < 10
        assert call_user(proxy, (0, 0, 0, 0, 0), timeout=5).value == 1  # a fresh worker: a fresh module
        pid = session.submissions[0].process.process.pid
        folder = session.submissions[0].process.folder
    assert not os.path.exists(folder)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_namespace_holds_proxies_values_and_the_globals_each_function_reads(tmp_path):
    path = _file(tmp_path, """\
        import numpy as np
        K = 3
        sizes = [1, 2.5, np.ones(2)]
        def helper():
            return K
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            return helper()
        def broken(x):
            raise ValueError(f"bad {x}")
        """)
    with Session(echo=None) as session:
        loaded = session.load(f"{path}:backward_pass")
        namespace = loaded.namespace
        assert isinstance(loaded.function, RemoteFunction) and loaded.function.__qualname__ == "backward_pass"
        assert namespace["K"] == 3 and namespace["sizes"][1] == 2.5 and (namespace["sizes"][2] == 1).all()
        assert "K" in loaded.function.globals_read() and "np" not in namespace
        result = call_user(loaded.function, ([np.ones((1, 1))] * 3, [], [], [], 0), timeout=5,
                           globals_to_set={"K": 2})
        assert result.value == 2 and result.globals_set == ("K",)
        assert namespace["backward_pass"](None, None, None, None, None) == 3  # put back after the call
        with pytest.raises(UserCodeError, match="bad 7") as caught:
            namespace["broken"](7)
        assert type(caught.value).__name__ == "ValueError"


def test_the_worker_sees_a_copy_a_scrubbed_environment_and_no_stdin(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    path = _file(tmp_path, """\
        import os, sys
        def f():
            return [os.getcwd(), os.environ.get("SECRET_TOKEN"), os.environ["HOME"], sys.stdin.read(),
                    os.path.exists("sub.py"), sys.flags.isolated]
        """)
    with Session(echo=None) as session:
        cwd, secret, home, stdin, copied, isolated = session.load(f"{path}:f", arguments=()).function()
    assert cwd != str(tmp_path) and copied and secret is None and stdin == "" and isolated == 1
    assert home.startswith(os.path.dirname(cwd))


@pytest.mark.skipif(bwrap_problem() is not None, reason=f"bubblewrap unusable: {bwrap_problem()}")
def test_under_the_sandbox_no_network_no_home_no_writes_outside_and_own_pids(tmp_path):
    secret = tmp_path / "answer_key.txt"
    secret.write_text("42")
    path = _file(tmp_path, f"""\
        import os, socket
        def f():
            found = {{"pid": os.getpid(), "key": os.path.exists({str(secret)!r}),
                     "home": os.path.exists(os.path.expanduser("~teacher"))}}
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=1)
                found["net"] = "open"
            except OSError as exc:
                found["net"] = type(exc).__name__
            try:
                open({str(tmp_path / "pwned")!r}, "w")
                found["write"] = True
            except OSError:
                found["write"] = False
            return str(found)
        """)
    with Session(echo=None, sandbox=True) as session:
        found = eval(session.load(f"{path}:f", arguments=()).function())  # noqa: S307 (our own test's dict)
    assert found["key"] is False and found["write"] is False and found["net"] != "open"
    assert found["pid"] < 10  # its own PID namespace
    assert not (tmp_path / "pwned").exists()


def test_without_bwrap_the_sandbox_is_exit_2_with_how_to_install_it(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "src"
    (tmp_path / "f.py").write_text("def backward_pass(a, b, c, d, e): pass\n")
    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH=str(source))  # no bwrap on this PATH
    command = [sys.executable, "-m", "manual_backprop", "check", "--backward", "f.py:backward_pass",
               "--sandbox"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "manual-backprop: error: --sandbox needs bubblewrap (bwrap), which is not installed: sudo apt-get "
        "install bubblewrap (Debian, Ubuntu), sudo dnf install bubblewrap (Fedora)"]


def test_a_forged_answer_on_the_workers_socket_is_a_failed_call_not_the_graders_crash(tmp_path):
    path = _file(tmp_path, """\
        import json, os, struct, sys, time
        def f(a):
            data = json.dumps({"status": "returned", "value": {"t": "none"}, "arrays_after": 5,
                               "blobs": []}).encode()
            os.write(int(sys.argv[1]), struct.pack("!Q", len(data)) + data)
            time.sleep(30)
        """)
    with Session(echo=None) as session:
        proxy = session.load(f"{path}:f", arguments=("a",)).function
        result = call_user(proxy, ([np.ones(2)],), timeout=20)
    assert result.status == "crash" and "malformed answer" in result.error
