"""The viewer's HTTP server: the standard library's ``ThreadingHTTPServer`` bound to 127.0.0.1 only.

Why the standard library: the viewer serves a few JSON endpoints, static files and byte ranges of videos to one
local browser. ``http.server`` does that with no dependency to install, audit or keep updated; a framework (Flask,
Starlette + uvicorn, aiohttp, bottle) would add a dependency (and for the ASGI ones an event loop) and none of the
checks below would come for free anyway -- path confinement, Host/Origin checks and range requests are written here
and tested in ``tests/view``. ``http.server`` is "not recommended for production" because it only does basic security
checks: here it listens on the loopback interface only, for one user, read-only, with the checks below.

Endpoints (GET and HEAD only; anything else is 405)::

    /                       the page (static/index.html); /static/<name> its scripts and style sheet
    /api/info               what PATH is (store or run), the run's models and warnings, the layers available
    /api/videos             every video/image: id, datasets, keyframes, persons, media URL, kind, gt/pred
    /api/video?id=ID        one video's keyframes with every person (boxes, keypoints, part boxes + states, objects)
    /api/query?pasta=COND   persons matching a PaSta condition (parsed, quoted: partwise.view.pasta)
    /api/query?sql=SQL      one read-only query over the view ``persons`` (the store's own barrier, see below)
    /files/<relative path>  a file under PATH (byte ranges for video seeking)

Security (every request):

* Host must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (no DNS rebinding); an ``Origin`` header, when sent, must
  be ``http://127.0.0.1:PORT`` or ``http://localhost:PORT``; ``Sec-Fetch-Site: cross-site`` is refused: 403.
* ``/files/``: the percent-decoded path is split into segments; empty, ``.`` or ``..`` segments, backslashes and NUL
  are refused (403), then the path is resolved (symlinks followed) and must be a regular file under the resolved
  PATH (403 otherwise, 404 when missing). Files the server reads itself (run.json, persons.parquet, store shards) pass
  the same check.
* Queries: a store is opened with :func:`partwise.data.store.open_store` (read-only, no file access but its shards,
  configuration locked); a run folder's ``persons.parquet`` is loaded into the same kind of locked in-memory DuckDB.
  Only one read-only statement runs (the store's own check: ``COPY``, ``ATTACH``, ``SET``... are refused).
* Nothing is written: no file under PATH is opened for writing (DuckDB's spill folder is a private temporary
  folder outside PATH, see :mod:`partwise.data.store`).
"""
from __future__ import annotations

import json
import math
import mimetypes
import os
import re
import threading
from datetime import date, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from partwise.errors import ConfigError, InputError, PartwiseError

HOST = "127.0.0.1"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "app.css": "text/css; charset=utf-8"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".ogv"}
MAX_ROWS = 1000  # query rows returned at most
#: columns sent per person to the page (those present in the data)
PERSON_COLUMNS = ("dataset", "time_s", "frame_index", "width", "height", "x1", "y1", "x2", "y2", "px1", "py1", "px2",
                  "py2", "person_id", "track_id", "score", "actions", "action_vocab", "pasta", "pasta_scores",
                  "pasta_vocab", "part_boxes", "objects", "part_objects", "keypoints", "verbs", "video_label")
_CHUNK = 1 << 16


class Forbidden(Exception):
    """A path outside PATH, a traversal attempt or a symlink leaving PATH."""


def safe_path(root: Path, relative: str) -> Path:
    """The file ``relative`` (already percent-decoded, ``/``-separated) under the resolved ``root``.

    :class:`Forbidden` for traversal (``..``, ``.``, empty segments, absolute paths, backslashes, NUL) and for paths
    that resolve (symlinks followed) outside ``root``; :class:`FileNotFoundError` when missing or not a regular file.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise Forbidden(relative)
    segments = relative.split("/")
    if any(s in ("", ".", "..") for s in segments) or re.match(r"^[A-Za-z]:", relative):
        raise Forbidden(relative)
    target = root.joinpath(*segments)
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        if os.path.lexists(target) or _dangling_link_on_path(root, segments):
            raise Forbidden(relative) from None
        raise FileNotFoundError(relative) from None
    if resolved != root and root not in resolved.parents:
        raise Forbidden(relative)
    if not resolved.is_file():
        raise FileNotFoundError(relative)
    return resolved


def _dangling_link_on_path(root: Path, segments: list[str]) -> bool:
    path = root
    for s in segments:
        path = path / s
        if path.is_symlink():
            return True
    return False


def _jsonable(value):
    """Values of query results as JSON (NaN/inf -> null, bytes -> null, dates -> ISO text)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    return str(value)


class Collection:
    """PATH as the viewer sees it: a store (``manifest.json``) or a run folder (``run.json``/``persons.parquet``)."""

    def __init__(self, path: str | os.PathLike):
        root = Path(path)
        if not root.is_dir():
            raise ConfigError(f"view: {path} is not a folder (a store or a `partwise run` output folder)")
        self.root = root.resolve()
        self.run_info: dict = {}
        self._lock = threading.Lock()
        if (self.root / "manifest.json").is_file():
            self.kind = "store"
            self._con = self._open_store()
        elif (self.root / "persons.parquet").exists() or (self.root / "run.json").exists() \
                or (self.root / "videos").is_dir():
            self.kind = "run"
            self._con = self._open_run()
        else:
            raise ConfigError(f"view: {path} is neither a store (manifest.json) nor a run folder (persons.parquet, "
                              f"run.json)")
        self.columns = [r[0] for r in self._con.execute("DESCRIBE persons").fetchall()]
        self._videos = None

    # -- opening -------------------------------------------------------------------------------------------------
    def _open_store(self):
        from partwise.data import store

        manifest = store.read_manifest(self.root)
        for source in manifest.get("sources", []):
            for shard in source.get("shards", []):
                try:
                    safe_path(self.root, str(shard))
                except Forbidden:
                    raise ConfigError(f"view: the store's shard {shard} is outside {self.root}") from None
                except FileNotFoundError:
                    raise InputError(self.root / str(shard), None, "missing shard") from None
        return store.open_store(self.root)

    def _open_run(self):
        from partwise.data import store

        tables = []
        try:
            tables.append(pq.read_table(safe_path(self.root, "persons.parquet")))
        except FileNotFoundError:  # a run in progress: every finished input's own rows
            videos = self.root / "videos"
            for d in sorted(videos.iterdir()) if videos.is_dir() else []:
                try:
                    tables.append(pq.read_table(safe_path(self.root, f"videos/{d.name}/persons.parquet")))
                except (FileNotFoundError, Forbidden):
                    continue
        except Forbidden:
            raise ConfigError(f"view: {self.root}/persons.parquet points outside {self.root}") from None
        try:
            self.run_info = json.loads(safe_path(self.root, "run.json").read_text())
        except (FileNotFoundError, Forbidden, ValueError, OSError):
            self.run_info = {}
        if tables:
            table = pa.concat_tables(tables, promote_options="default")
        else:
            from partwise.data.records import PERSON_SCHEMA
            table = PERSON_SCHEMA.empty_table()
        con = store._connect()  # the store's own locked-down connection recipe (private helpers, same module family)
        try:
            con.register("_persons", table)
            con.execute("CREATE TABLE persons AS SELECT * FROM _persons")
            con.unregister("_persons")
            con.execute("""
                CREATE VIEW pasta_labels AS
                SELECT video_id, time_s, frame_index, person_id, pasta_vocab, name AS pasta,
                       CASE WHEN strpos(name, ':') > 0 THEN trim(name[:strpos(name, ':') - 1]) END AS part,
                       CASE WHEN strpos(name, ':') > 0 THEN trim(name[strpos(name, ':') + 1:]) ELSE name END AS state
                FROM (SELECT video_id, time_s, frame_index, person_id, pasta_vocab, unnest(pasta) AS name
                      FROM persons)""")
            store._lock_down(con, [])
        except BaseException:
            con.close()
            raise
        return con

    def close(self) -> None:
        self._con.close()

    # -- reads ---------------------------------------------------------------------------------------------------
    def _cursor(self):
        with self._lock:
            return self._con.cursor()

    def _select(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
        cur = self._cursor()
        try:
            rel = cur.execute(sql, params or [])
            names = [d[0] for d in rel.description]
            return names, rel.fetchall()
        finally:
            cur.close()

    def query(self, sql: str, limit: int = MAX_ROWS) -> dict:
        """One read-only statement (the store's check); at most ``limit`` rows."""
        from partwise.data import store

        cur = self._cursor()
        try:
            statement = store._read_only_statement(cur, sql)
            rel = cur.execute(statement.query)
            names = [d[0] for d in rel.description] if rel.description else []
            rows = rel.fetchmany(limit + 1)
        except duckdb.Error as exc:
            raise ConfigError(f"query: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
        finally:
            cur.close()
        truncated = len(rows) > limit
        rows = [[_jsonable(v) for v in row] for row in rows[:limit]]
        found: dict[tuple, dict] = {}
        if "video_id" in names:
            at = {n: names.index(n) for n in ("video_id", "time_s", "frame_index", "person_id", "track_id") if n in names}
            for row in rows:
                m = {k: row[i] for k, i in at.items()}
                key = (m.get("video_id"), m.get("time_s"), m.get("frame_index"))
                match = found.setdefault(key, {"video_id": key[0], "time_s": key[1], "frame_index": key[2],
                                               "persons": []})
                pid = m.get("person_id", m.get("track_id"))
                if pid is not None:
                    match["persons"].append(pid)
        matches = list(found.values())
        return {"columns": names, "rows": rows, "truncated": truncated, "matches": matches}

    def pasta_query(self, condition: str) -> dict:
        from partwise.view.pasta import to_sql

        where = to_sql(condition)
        extra = ", track_id" if "track_id" in self.columns else ""
        sql = (f"SELECT video_id, time_s, frame_index, dataset, person_id{extra}, pasta FROM persons WHERE {where} "
               f"ORDER BY video_id, time_s NULLS FIRST, frame_index NULLS FIRST, person_id")
        result = self.query(sql)
        result["sql"] = sql
        return result

    def videos(self) -> list[dict]:
        if self._videos is None:
            names, rows = self._select("""
                SELECT video_id, list(DISTINCT dataset ORDER BY dataset) AS datasets,
                       count(DISTINCT (time_s, frame_index)) AS keyframes, count(*) AS persons,
                       max(width) AS width, max(height) AS height,
                       count(*) FILTER (WHERE score IS NULL) AS gt_rows, count(*) FILTER (WHERE score IS NOT NULL) AS pred_rows,
                       min(time_s) AS first_time, max(time_s) AS last_time, any_value(source) AS source
                FROM persons GROUP BY video_id ORDER BY video_id""")
            out = []
            for row in rows:
                v = dict(zip(names, row))
                media = self.media(v["video_id"], v.pop("source"))
                v["media"] = "/files/" + quote(media) if media else None
                v["kind"] = ("image" if Path(media).suffix.lower() in IMAGE_SUFFIXES else "video") if media else None
                v["annotated"] = bool(media and Path(media).name.startswith("annotated."))
                out.append(_jsonable(v))
            self._videos = out
        return self._videos

    def media(self, video_id: str, source: str | None) -> str | None:
        """The path (relative to PATH) of the video/image to show: the original if it lies under PATH, else the
        run's annotated.mp4/.jpg; None when there is none under PATH."""
        candidates = []
        if source:
            file = source.rsplit(":", 1)[0] if ":" in source else source
            candidates.append(Path(file))
        for folder in ("", "videos", "media", "frames"):
            for suffix in ("", *sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES)):
                candidates.append(Path(folder) / f"{video_id}{suffix}")
        if self.kind == "run":
            candidates += [Path("videos") / video_id / "annotated.mp4", Path("videos") / video_id / "annotated.jpg"]
        for candidate in candidates:
            path = candidate if candidate.is_absolute() else self.root / candidate
            if path.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                continue
            try:
                relative = Path(os.path.abspath(path)).relative_to(self.root)
            except ValueError:
                continue  # the original is outside PATH: not served
            try:
                safe_path(self.root, relative.as_posix())
            except (Forbidden, FileNotFoundError):
                continue
            return relative.as_posix()
        return None

    def video(self, video_id: str) -> dict:
        listing = {v["video_id"]: v for v in self.videos()}
        if video_id not in listing:
            raise FileNotFoundError(video_id)
        columns = [c for c in PERSON_COLUMNS if c in self.columns]
        names, rows = self._select(
            f"SELECT {', '.join(columns)} FROM persons WHERE video_id = ? "
            f"ORDER BY time_s NULLS FIRST, frame_index NULLS FIRST, dataset, person_id", [video_id])
        keyframes: list[dict] = []
        for row in rows:
            person = _jsonable(dict(zip(names, row)))
            person["group"] = "gt" if person.get("score") is None else "pred"
            key = (person.get("time_s"), person.get("frame_index"))
            if not keyframes or (keyframes[-1]["time_s"], keyframes[-1]["frame_index"]) != key:
                keyframes.append({"time_s": key[0], "frame_index": key[1], "persons": []})
            keyframes[-1]["persons"].append(person)
        return {**listing[video_id], "keyframes": keyframes}

    def info(self) -> dict:
        info = {"kind": self.kind, "name": self.root.name, "columns": self.columns,
                "layers": ["boxes", "skeletons", "part_boxes", "states", "objects", "ground_truth"]}
        if self.run_info:
            keys = ("persons_from", "model", "detector", "video_model", "part_state_vocab", "warnings")
            info["run"] = _jsonable({k: self.run_info.get(k) for k in keys if k in self.run_info})
        return info


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, collection: Collection, port: int = 0, *, quiet: bool = True):
        self.collection = collection
        self.quiet = quiet
        super().__init__((HOST, port), ViewHandler)
        self.port = self.server_address[1]
        self.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.allowed_origins = {f"http://{h}" for h in self.allowed_hosts}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


class ViewHandler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "partwise-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- responses -----------------------------------------------------------------------------------------------
    def _headers(self, status: int, content_type: str, length: int, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
                                                    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self._headers(status, content_type, len(body), {"Cache-Control": "no-store", **(extra or {})})
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # -- checks --------------------------------------------------------------------------------------------------
    def _allowed(self) -> bool:
        host = self.headers.get("Host", "")
        if host.lower() not in self.server.allowed_hosts:
            self._error(403, "forbidden host")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self.server.allowed_origins:
            self._error(403, "forbidden origin")
            return False
        if self.headers.get("Sec-Fetch-Site", "same-origin").lower() not in ("same-origin", "none"):
            self._error(403, "forbidden cross-site request")
            return False
        return True

    def do_GET(self):  # noqa: N802
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_HEAD = do_GET

    def _refuse_method(self):
        self._error(405, "read-only: GET and HEAD only")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _dispatch(self) -> None:
        if not self._allowed():
            return
        raw = self.path
        if not raw.startswith("/"):  # absolute-form request targets (a proxy's) are not served
            return self._error(403, "forbidden request target")
        parts = urlsplit(raw)
        path, params = parts.path, parse_qs(parts.query, max_num_fields=20)
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path.startswith("/files/"):
            return self._file(path[len("/files/"):])
        if path.startswith("/api/"):
            return self._api(path[len("/api/"):], params)
        self._error(404, "not found")

    def _static(self, name: str) -> None:
        if name not in STATIC_FILES:
            return self._error(404, "not found")
        self._send(200, (STATIC_DIR / name).read_bytes(), STATIC_FILES[name])

    def _api(self, name: str, params: dict) -> None:
        collection = self.server.collection
        one = lambda key: (params.get(key) or [None])[0]  # noqa: E731
        try:
            if name == "info":
                return self._json(collection.info())
            if name == "videos":
                return self._json({"videos": collection.videos()})
            if name == "video":
                vid = one("id")
                if vid is None:
                    return self._error(400, "id missing")
                return self._json(collection.video(vid))
            if name == "query":
                if one("pasta") is not None:
                    return self._json(collection.pasta_query(one("pasta")))
                if one("sql") is not None:
                    return self._json(collection.query(one("sql")))
                return self._error(400, "pasta or sql missing")
        except FileNotFoundError:
            return self._error(404, "no such video")
        except PartwiseError as exc:
            return self._error(400, str(exc))
        self._error(404, "not found")

    def _file(self, encoded: str) -> None:
        relative = unquote(encoded, errors="strict") if "%" in encoded else encoded
        root = self.server.collection.root
        try:
            file = safe_path(root, relative)
        except Forbidden:
            return self._error(403, "forbidden path")
        except (FileNotFoundError, UnicodeDecodeError):
            return self._error(404, "not found")
        size = file.stat().st_size
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        start, end, status = 0, size - 1, 200
        extra = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        header = self.headers.get("Range")
        if header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
            if not match or (not match.group(1) and not match.group(2)):
                return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start, end = max(size - int(match.group(2)), 0), size - 1
            if start > end or start >= size:
                return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
            status = 206
            extra["Content-Range"] = f"bytes {start}-{end}/{size}"
        with open(file, "rb") as fh:  # read-only
            self._headers(status, content_type, end - start + 1, extra)
            if self.command == "HEAD":
                return
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def serve(path: str | os.PathLike, port: int = 0, *, quiet: bool = True) -> ViewServer:
    """A started-not-serving :class:`ViewServer` for PATH (call ``serve_forever``; ``port`` 0 = a free port)."""
    return ViewServer(Collection(path), port, quiet=quiet)
