"""The viewer's server: confinement to PATH, origin checks, 127.0.0.1 only, PaSta parsing, read-only queries."""
import http.client
import json
import os
import socket
from urllib.parse import quote

import pytest

from partwise.errors import ConfigError
from partwise.view import pasta
from partwise.view.server import Forbidden, safe_path


def _get(port, path, headers=None, method="GET"):
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        con.putrequest(method, path, skip_host=True, skip_accept_encoding=True)  # path sent as is, not normalised
        hdrs = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        for k, v in hdrs.items():
            if v is not None:
                con.putheader(k, v)
        con.endheaders()
        response = con.getresponse()
        return response.status, response.read(), response
    finally:
        con.close()


@pytest.fixture
def run_server(run_dir, serve_path):
    return serve_path(run_dir)


def test_binds_loopback_only(run_server):
    assert run_server.server.server_address[0] == "127.0.0.1"
    assert run_server.server.socket.getsockname()[0] == "127.0.0.1"
    assert run_server.url.startswith("http://127.0.0.1:")
    # not reachable through another local address of this machine (if it has one)
    try:
        other = socket.gethostbyname(socket.gethostname())
    except OSError:
        other = "127.0.0.1"
    if not other.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((other, run_server.port), timeout=2).close()


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/files/../../etc/passwd", "/files/..%2f..%2fetc%2fpasswd", "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/files/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/files//etc/passwd",
    "/files/%2fetc%2fpasswd", "/files/videos/..%5c..%5cetc%5cpasswd", "/files/videos/%00", "/files/./run.json",
    "/static/../run.json", "/files/%252e%252e/%252e%252e/etc/passwd", "http://127.0.0.1/etc/passwd",
])
def test_traversal_refused(run_server, path):
    status, body, _ = _get(run_server.port, path)
    assert status in (403, 404), (path, status)
    assert b"root:" not in body


def test_symlink_out_of_path_refused(run_dir, serve_path, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = run_dir / "videos" / "leak.txt"
    dlink = run_dir / "videos" / "leakdir"
    os.symlink(secret, link)
    os.symlink(tmp_path, dlink)
    inside = run_dir / "videos" / "inside.json"
    os.symlink(run_dir / "run.json", inside)  # a link that stays under PATH is fine
    try:
        server = serve_path(run_dir)
        for path in ("/files/videos/leak.txt", "/files/videos/leakdir/secret.txt"):
            status, body, _ = _get(server.port, path)
            assert status == 403 and b"secret" not in body, path
        assert _get(server.port, "/files/videos/inside.json")[0] == 200
        with pytest.raises(Forbidden):
            safe_path(run_dir.resolve(), "videos/leak.txt")
        with pytest.raises(Forbidden):
            safe_path(run_dir.resolve(), str(secret))
    finally:
        for p in (link, dlink, inside):
            p.unlink()


def test_files_under_path_and_ranges(run_server, run_dir):
    status, body, _ = _get(run_server.port, "/files/run.json")
    assert status == 200 and json.loads(body)["model"] == "synthetic"
    data = (run_dir / "videos" / "clip" / "annotated.mp4").read_bytes()
    status, body, response = _get(run_server.port, "/files/videos/clip/annotated.mp4", {"Range": "bytes=10-99"})
    assert status == 206 and body == data[10:100]
    assert response.getheader("Content-Range") == f"bytes 10-99/{len(data)}"
    assert response.getheader("Content-Type") == "video/mp4"
    status, body, _ = _get(run_server.port, "/files/videos/clip/annotated.mp4", {"Range": "bytes=-5"})
    assert status == 206 and body == data[-5:]
    assert _get(run_server.port, "/files/videos/clip/annotated.mp4", {"Range": f"bytes={len(data)}-"})[0] == 416
    assert _get(run_server.port, "/files/" + quote("videos/photo.png/annotated.jpg"))[0] == 200
    assert _get(run_server.port, "/files/nope.txt")[0] == 404


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
    {"Host": "evil.example"}, {"Host": "127.0.0.1"}, {"Host": None}, {"Sec-Fetch-Site": "cross-site"},
])
def test_other_origins_refused(run_server, headers):
    for path in ("/", "/api/videos", "/files/run.json", "/api/query?pasta=hand:%20hold"):
        status, _, _ = _get(run_server.port, path, headers)
        assert status == 403, (headers, path)


def test_own_origins_accepted_and_writes_refused(run_server):
    port = run_server.port
    assert _get(port, "/api/info", {"Origin": f"http://127.0.0.1:{port}"})[0] == 200
    assert _get(port, "/api/info", {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})[0] == 200
    for method in ("POST", "PUT", "DELETE"):
        assert _get(port, "/files/run.json", method=method)[0] == 405
    status, body, response = _get(port, "/")
    assert status == 200 and b"partwise view" in body
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")


def test_pasta_condition_parser():
    assert pasta.to_sql("hand: hold AND head: inspect") == \
        "(list_contains(pasta, 'hand: hold') AND list_contains(pasta, 'head: inspect'))"
    assert pasta.to_sql("hand:hold or not (head :  inspect)") == \
        "(list_contains(pasta, 'hand: hold') OR (NOT list_contains(pasta, 'head: inspect')))"
    assert pasta.to_sql("hip: sit in") == "list_contains(pasta, 'hip: sit in')"
    assert pasta.to_sql("hand: it's") == "list_contains(pasta, 'hand: it''s')"  # quoted, not pasted
    assert "starts_with(_p.name, 'left_hand: ')" in pasta.to_sql("left_hand: *")
    for bad in ["", "hand", "hand: hold AND", "(hand: hold", "hand: hold)", "hand: hold') OR 1=1 --",
                "hand: hold'; DROP TABLE persons; --", "hand: hold OR true", "a: b = 1", "AND hand: hold",
                "hand: " + "x" * 3000]:
        with pytest.raises(ConfigError):
            pasta.to_sql(bad)


def test_pasta_injection_is_quoted_in_the_query(run_server):
    status, body, _ = _get(run_server.port, "/api/query?pasta=" + quote("hand: x' OR head: ')--"))
    assert status == 400
    status, body, _ = _get(run_server.port, "/api/query?pasta=" + quote("hand: x' OR head: it''s"))
    assert status == 200 and json.loads(body)["rows"] == []  # one literal state name, matching nothing
    status, body, _ = _get(run_server.port, "/api/query?pasta=" + quote("hand: hold') OR (1=1"))
    assert status == 400


def test_queries(run_server, store_dir, serve_path, tmp_path):
    status, body, _ = _get(run_server.port, "/api/query?pasta=" + quote("hand: hold AND head: inspect"))
    result = json.loads(body)
    assert status == 200 and [(m["video_id"], m["time_s"], m["persons"]) for m in result["matches"]] == \
        [("clip", 0.0, [1]), ("clip", 1.0, [1])]
    target = tmp_path / "copied.csv"
    for sql in (f"COPY persons TO '{target}'", "CREATE TABLE t AS SELECT 1", "SET lock_configuration = false",
                f"SELECT * FROM read_csv('{store_dir}/manifest.json')", "ATTACH 'x.db'", "SELECT 1; SELECT 2",
                "INSTALL httpfs"):
        status, body, _ = _get(run_server.port, "/api/query?sql=" + quote(sql))
        assert status == 400, sql
    assert not target.exists()
    status, body, _ = _get(run_server.port, "/api/query?sql=" + quote("SELECT count(*) AS n FROM persons"))
    assert status == 200 and json.loads(body)["rows"] == [[5]]
    store = serve_path(store_dir)
    status, body, _ = _get(store.port, "/api/query?sql=" + quote(f"COPY persons TO '{target}'"))
    assert status == 400 and not target.exists()
    status, body, _ = _get(store.port, "/api/query?sql=" + quote(
        "SELECT video_id, time_s, frame_index, person_id FROM persons WHERE score IS NULL AND person_id = 2"))
    assert status == 200 and len(json.loads(body)["matches"]) == 2


def test_listing_and_media(run_server, store_dir, serve_path):
    videos = {v["video_id"]: v for v in json.loads(_get(run_server.port, "/api/videos")[1])["videos"]}
    assert videos["clip"]["media"] == "/files/videos/clip/annotated.mp4" and videos["clip"]["kind"] == "video"
    # the image's original lies outside PATH: its annotated copy is served instead
    assert videos["photo.png"]["media"] == "/files/videos/photo.png/annotated.jpg"
    clip = json.loads(_get(run_server.port, "/api/video?id=clip")[1])
    assert len(clip["keyframes"]) == 2 and {p["person_id"] for p in clip["keyframes"][0]["persons"]} == {1, 2}
    assert _get(run_server.port, "/api/video?id=" + quote("../../etc"))[0] == 404
    store = serve_path(store_dir)
    (video,) = json.loads(_get(store.port, "/api/videos")[1])["videos"]
    assert video["media"] == "/files/videos/clip.mp4" and video["gt_rows"] == 4 and video["pred_rows"] == 4


def test_never_writes(run_dir, store_dir, serve_path):
    def snapshot(root):
        return sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*"))

    before = snapshot(run_dir), snapshot(store_dir)
    for root in (run_dir, store_dir):
        server = serve_path(root)
        for path in ("/", "/api/info", "/api/videos", "/api/video?id=clip", "/api/query?pasta=hand:%20hold"):
            assert _get(server.port, path)[0] == 200
    assert (snapshot(run_dir), snapshot(store_dir)) == before


def test_cli_registers_view():
    from partwise.cli import build_parser

    args = build_parser(["view"]).parse_args(["view", "some/dir", "--port", "8765"])
    assert args.path == "some/dir" and args.port == 8765
