#!/usr/bin/env python3
"""A tiny webhook endpoint for the demo: every POST body is appended, as one line, to a
file, and answered 200. It stands in for the team's alerting (Slack, PagerDuty, ...).

    webhook_receiver.py --port 8425 --out webhook.jsonl [--port-file FILE]

--port 0 picks a free port; --port-file receives the port once it listens.
"""
import argparse
import http.server
import json
import os
import sys

MAX_BODY = 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.send_response(413)
            self.end_headers()
            return
        body = self.rfile.read(n)
        try:
            line = json.dumps(json.loads(body), separators=(",", ":"))
        except ValueError:
            line = json.dumps({"unparsed": body.decode("utf-8", "replace")})
        with open(self.server.out, "a") as f:
            f.write(line + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook: %s %s\n" % (self.address_string(), fmt % args))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8425)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.out = a.out
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(tmp, a.port_file)
    sys.stderr.write("webhook: listening on 127.0.0.1:%d, bodies to %s\n"
                     % (srv.server_address[1], a.out))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
