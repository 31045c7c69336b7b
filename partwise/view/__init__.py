"""``partwise view PATH``: a read-only web viewer for a person store or a ``partwise run`` folder, on 127.0.0.1.

:mod:`partwise.view.server` is the HTTP server (the standard library's ``ThreadingHTTPServer``: no dependency),
:mod:`partwise.view.pasta` turns a PaSta condition (``hand: hold AND head: inspect``) into quoted SQL, and
``static/`` holds the page (plain HTML/JS/CSS, no network).
"""
