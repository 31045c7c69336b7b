"""``partwise view PATH``: serve a store or a run folder to the browser, on 127.0.0.1 only."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view", help="browse a store or a run folder in the browser (127.0.0.1 only, read-only)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve a person store (manifest.json) or a `partwise run` output folder as a small web app on "
                    "127.0.0.1: videos with overlays per layer, keyframes with every person's part states, and "
                    "filters by SQL or a PaSta condition. Read-only; serves only files under PATH.",
        epilog="examples:\n  partwise view out/            # a run folder, on a free port\n"
               "  partwise view store/ --port 8765 --open\n"
               "  then filter with e.g.  hand: hold AND head: inspect")
    parser.add_argument("path", metavar="PATH", help="a store folder or a `partwise run` output folder")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    from partwise.errors import ConfigError
    from partwise.view.server import serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: not a port number")
    try:
        server = serve(args.path, args.port, quiet=not args.verbose)
    except OSError as exc:
        raise ConfigError(f"view: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    print(f"partwise view: serving {server.collection.root} ({server.collection.kind}) at {server.url} "
          f"(Ctrl-C to stop)", file=sys.stderr, flush=True)
    if args.open:
        import webbrowser
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.collection.close()
    return 0
