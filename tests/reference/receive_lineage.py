#!/usr/bin/env python3
"""A lineage endpoint for the tests: accepts OpenLineage events POSTed to /api/v1/lineage on
127.0.0.1:PORT and appends each body, as one line, to EVENTS.jsonl.

    receive_lineage.py PORT EVENTS.jsonl
"""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/api/v1/lineage" or "json" not in self.headers.get("Content-Type", ""):
            self.send_error(404 if self.path != "/api/v1/lineage" else 415)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "ab") as events:
            events.write(body.replace(b"\n", b" ") + b"\n")
        # Marquez answers 201 Created.
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
