"""Command line on streams: ``tcpdump -w - | flowspectrum predict MODEL -``,
``flowspectrum sessions - -o -``, CSV or JSON Lines, one line per session."""

import io
import json
import os
import select
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from sklearn_flowspectrum._cli import main
from tests import _pcaps as P
from tests.test_cli import CAPTURES, FAST, MUMBLE, OICQ, assert_one_line_error, run

T0 = 1_600_000_000_000_000_000
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _cli(*argv, data=b"", timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "sklearn_flowspectrum", *map(str, argv)],
        input=data,
        capture_output=True,
        env=ENV,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def capture_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("captures")
    for label, sources in (("chat", CAPTURES[:2]), ("voip", CAPTURES[2:4])):
        (root / label).mkdir()
        for src in sources:
            shutil.copy(src, root / label)
    model = tmp_path_factory.mktemp("model") / "model.joblib"
    assert main(["-q", "fit", str(root), "-o", str(model), *FAST]) == 0
    return model


def test_sessions_from_standard_input_equal_those_of_the_file():
    with open(OICQ, "rb") as f:
        data = f.read()
    batch = _cli("sessions", OICQ, "-o", "-")
    stream = _cli("sessions", "-", "-o", "-", data=data)
    assert batch.returncode == stream.returncode == 0, stream.stderr.decode()
    # A file given by name is labelled by its folder; a stream has no label.
    want = pd.read_csv(io.BytesIO(batch.stdout)).drop(columns=["file", "label"])
    got = pd.read_csv(io.BytesIO(stream.stdout)).drop(columns="file")
    pd.testing.assert_frame_equal(got, want)
    lines = _cli("sessions", "-", "-o", "-", "--format", "jsonl", data=data)
    rows = [json.loads(line) for line in lines.stdout.decode().splitlines()]
    assert len(rows) == len(want)
    assert rows[0]["src_port"] == want.loc[0, "src_port"]
    assert rows[0]["file"] == "<stdin>"


def test_predict_from_standard_input_equals_the_file(capture_model):
    with open(MUMBLE, "rb") as f:
        data = f.read()
    batch = _cli("predict", capture_model, MUMBLE)
    stream = _cli("predict", capture_model, "-", data=data)
    assert stream.returncode == 0, stream.stderr.decode()
    want = pd.read_csv(io.BytesIO(batch.stdout))
    got = pd.read_csv(io.BytesIO(stream.stdout))
    assert list(got.columns) == [
        "protocol", "src_addr", "src_port", "dst_addr", "dst_port", "first_ts",
        "predicted", "probability", "spectrum",
    ]  # fmt: skip
    # Sessions come out as their images fill, not in file order.
    key = ["src_addr", "src_port", "dst_addr", "dst_port", "first_ts"]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert got["predicted"].tolist() == want["predicted"].tolist()
    pd.testing.assert_series_equal(got["spectrum"], want["spectrum"], atol=1e-5)


def test_a_prediction_line_comes_before_the_input_ends(capture_model):
    ips = P.tcp_conversation(
        requests=tuple(b"r" * 300 for _ in range(10)),
        replies=tuple(b"a" * 300 for _ in range(10)),
    )
    data = P.pcap_bytes([(T0 + i * 1_000_000, P.eth(ip)) for i, ip in enumerate(ips)])
    cmd = [sys.executable, "-m", "sklearn_flowspectrum", "predict"]
    process = subprocess.Popen(
        [*cmd, str(capture_model), "-", "--format", "jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        process.stdin.write(data[:2000])  # enough for one 784-byte image
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "no prediction while the input is still open"
        line = json.loads(process.stdout.readline())
        assert line["src_port"] == 40000 and "predicted" in line
        process.stdin.write(data[2000:])
        process.stdin.close()
        assert process.stdout.read() == b""  # that session is not written again
        assert process.wait(60) == 0
    finally:
        process.kill()


def test_stream_inputs_write_to_standard_output_only(capsys, capture_model, tmp_path):
    code, _, err = run(capsys, "predict", capture_model, "-", "-o", tmp_path / "p.csv")
    assert_one_line_error(code, err, "with a stream input the rows go to standard")
    code, _, err = run(capsys, "sessions", OICQ, "-", "-o", "-")
    assert_one_line_error(code, err, "'-' (standard input) must be the only input")


def test_fifos_are_streams(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [sys.executable, "-m", "sklearn_flowspectrum", "sessions", str(fifo),
         "-o", "-", "--idle-timeout", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    with open(OICQ, "rb") as src, open(fifo, "wb") as f:
        f.write(src.read())
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert len(pd.read_csv(io.BytesIO(out))) > 0


def test_live_capture_on_the_loopback_interface(capture_model):
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump is not installed")
    probe = subprocess.run(
        [tcpdump, "-i", "lo", "-c", "1", "-w", os.devnull, "-G", "1"],
        capture_output=True,
        timeout=30,
    )
    if b"permission" in probe.stderr.lower() or b"not permitted" in probe.stderr:
        pytest.skip("tcpdump may not capture here (no permission)")
    capture = subprocess.Popen(
        [tcpdump, "-i", "lo", "-U", "-w", "-", "udp", "port", "45999"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    predict = subprocess.Popen(
        [sys.executable, "-m", "sklearn_flowspectrum", "predict",
         str(capture_model), "-", "--idle-timeout", "1"],
        stdin=capture.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    try:
        import socket

        time.sleep(2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                s.sendto(b"x" * 400, ("127.0.0.1", 45999))
                time.sleep(0.05)
            time.sleep(3)
            s.sendto(b"y", ("127.0.0.1", 45998))  # moves the capture clock on
        time.sleep(2)
        capture.terminate()
        out, _ = predict.communicate(timeout=120)
        table = pd.read_csv(io.BytesIO(out))
        assert (table["dst_port"] == 45999).any()
    finally:
        capture.kill()
        predict.kill()
