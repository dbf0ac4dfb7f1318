"""The issue-12 fault cases in ../shared/cases/input-faults (tracking logs, AMASS npz,
body-model pickle, server messages): each gives the documented right result or a
one-line error naming the file or field. Skipped when ../shared is absent; every KIND is
also tested on generated inputs in test_input_faults.py and test_server.py."""

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import tiny_model

CASES = Path(__file__).resolve().parents[1].parent / "shared" / "cases" / "input-faults"
pytestmark = pytest.mark.skipif(
    not CASES.is_dir(), reason="needs the shared fault cases (../shared/cases/input-faults from the repository "
                               "root; CI has them, a fresh clone does not)")

LOG_ERRORS = ["csv_long_field/long_field.csv", "csv_misc/huge_pos.csv", "csv_misc/latin1.csv",
              "csv_misc/quote.csv", "csv_nul/nul.csv", "json_bigint/bigint.json",
              "json_bigint/bigint_position.json", "json_deep/deep500.json", "json_deep/deep1000.json",
              "json_deep/deep2000.json", "json_deep/deep5000.json", "json_misc/digits5000.json",
              "json_misc/empty_frames.json", "log_timestamp_gap/gap_1e5.csv",
              "log_timestamp_gap/gap_1e7.csv", "log_timestamp_gap/gap_1e10.csv"]


@pytest.mark.parametrize("name", ["04-tracking-timestamps-nanoseconds.csv", "06-tracking-csv-utf8-bom.csv",
                                  "07-tracking-json-zero-quaternion-lost.json",
                                  "07-tracking-json-zero-quaternion-lost.companion.csv"])
def test_report_logs_are_read(name):
    import warnings

    from mage.inference.tracking_log import load_tracking

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracking, _ = load_tracking(CASES / "reports" / name)
    assert tracking.num_frames == 120
    assert ("nanoseconds" in name) == any("read as nanoseconds" in str(w.message) for w in caught)


def test_zero_pose_json_and_csv_agree():
    import torch

    from mage.inference.tracking_log import load_tracking

    a, _ = load_tracking(CASES / "reports" / "07-tracking-json-zero-quaternion-lost.json")
    b, _ = load_tracking(CASES / "reports" / "07-tracking-json-zero-quaternion-lost.companion.csv")
    assert torch.allclose(a.positions, b.positions, atol=1e-6)


@pytest.mark.parametrize("name", LOG_ERRORS)
def test_fuzz_logs_give_one_line_errors(name):
    from mage.inference.tracking_log import load_tracking

    path = CASES / "fuzz" / name
    with pytest.raises(ValueError) as exc:
        load_tracking(path)
    msg = str(exc.value)
    assert msg.startswith(str(path)) and "\n" not in msg and len(msg) < 400, msg


@pytest.mark.parametrize("case, extra, match", [
    ("amass_not_npy_member/bad_poses.npz", [], "field 'mocap_framerate' is not an .npy array"),
    ("amass_tiny_fps/tiny_poses.npz", ["body"], "field 'mocap_framerate' must be a plausible frame rate"),
    ("amass_tiny_fps/huge_poses.npz", ["body"], "field 'mocap_framerate' must be a plausible frame rate"),
    ("body_model_pickle/in_poses.npz", ["pkl"], "model.pkl: not a plain body-model pickle"),
])
def test_fuzz_npz_cases_exit_2_with_one_line(tmp_path, capsys, smplh_model_file, case, extra, match):
    from mage.cli.main import main

    args = ["data", "import", str(CASES / "fuzz" / case), "-o", str(tmp_path / "out.npz")]
    if extra == ["body"]:
        args += ["--body-model", str(smplh_model_file)]
    elif extra == ["pkl"]:
        args += ["--body-model", str(CASES / "fuzz" / "body_model_pickle" / "model.pkl")]
    assert main(args) == 2
    out = capsys.readouterr()
    text = (out.out + out.err).strip()
    assert match in text and "PAYLOAD" not in text and "Traceback" not in text
    assert not (tmp_path / "out.npz").exists()


def test_fuzz_server_messages_get_replies_and_keep_the_connection():
    from mage.inference.server import PoseServer
    from mage.inference.streaming import Streamer
    from mage.inference.tracking_log import TrackingFrame

    first = TrackingFrame(np.array([[0, 0, 1.6], [0.3, 0, 1], [-0.3, 0, 1]]), np.tile([0, 0, 0, 1.0], (3, 1)), 0.0)
    texts = [json.dumps(first.to_dict())] + [p.read_text() for p in sorted((CASES / "fuzz" / "server").glob("*.txt"))
                                             if p.name != "README.txt"]
    model = tiny_model(window=8)
    server = PoseServer(lambda: Streamer(model), port=0)

    async def scenario():
        from websockets.asyncio.client import connect

        stop = asyncio.Event()
        port = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(server.serve(stop, ready=port.set_result))
        replies = []
        async with connect(f"ws://127.0.0.1:{await asyncio.wait_for(port, 20)}") as ws:
            for t in texts:
                await ws.send(t)
                replies.append(await asyncio.wait_for(ws.recv(), 20))
        stop.set()
        await task
        return replies

    def refuse(token):
        raise AssertionError(f"{token} in a reply")

    replies = [json.loads(r, parse_constant=refuse) for r in asyncio.run(scenario())]
    assert len(replies) == len(texts) and replies[0]["type"] == "pose"
    assert all(r["type"] in ("pose", "error") for r in replies)
    assert any(r["type"] == "pose" and any(r["lost"].values()) for r in replies[1:])
