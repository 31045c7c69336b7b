import pytest

from partwise.cli import main


def test_usage_errors_are_one_line_before_any_work(tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not a video")
    out = tmp_path / "out"
    assert main(["run", str(video), "--out", str(out), "--pose", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no source of people" in err[0]
    assert main(["run", str(tmp_path / "missing"), "--out", str(out), "--pose", "none"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("vid,0902,0.1,0.1,0.5,0.9,1,1\nvid,0903,0.1,0.1,1.5,0.9,1,1\n")
    assert main(["run", str(video), "--out", str(out), "--boxes", str(boxes), "--pose", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "boxes.csv:line 2" in err[0]
    assert main(["run", str(video), "--out", str(out), "--boxes", str(boxes).replace(".csv", ".txt"),
                 "--pose", "none"]) == 2
    assert main(["run", str(video), "--out", str(out), "--workers", "0"]) == 2
    assert not (out / "persons.parquet").exists()


def test_a_folder_without_media_is_an_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "out"), "--pose", "none"]) == 2
    assert "no videos or images found" in capsys.readouterr().err


def test_camera_and_phone_file_names_are_inputs(tmp_path):
    from partwise.infer.inputs import discover_inputs

    for name in ("00012.MTS", "clip.m2ts", "IMG_0001.MOV", "old.3gp", "scan.TIFF", "photo.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = {(item.path.name, item.kind) for item in discover_inputs(tmp_path)}
    assert found == {("00012.MTS", "video"), ("clip.m2ts", "video"), ("IMG_0001.MOV", "video"), ("old.3gp", "video"),
                     ("scan.TIFF", "image"), ("photo.JPG", "image")}


@pytest.mark.parametrize("name", ["a.mp4", "a.jpg"])
def test_a_corrupt_single_input_exits_1_with_one_line(tmp_path, capsys, name):
    media = tmp_path / name
    media.write_bytes(b"\x00" * 64)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"{media.stem if name.endswith('mp4') else name},0902,0.1,0.1,0.5,0.9,1,1\n")
    assert main(["run", str(media), "--out", str(tmp_path / "out"), "--boxes", str(boxes), "--pose", "none",
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"partwise: error: {media}") and errors[0].endswith("(skipped)")
    assert "0 processed, 0 already done, 1 failed" in captured.out
