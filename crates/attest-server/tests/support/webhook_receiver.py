"""A webhook receiver for Attest's tests, checked by an independent implementation.

Verifies every request with the Standard Webhooks reference library
(`standardwebhooks` from PyPI) and appends one JSON line per request to a file:
the webhook-id, whether the signature verified, and the ledger position the
payload names. Answers 204 to a valid request and 400 to an invalid one.

usage: webhook_receiver.py PORT SECRET OUT_FILE
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
VERIFIER = Webhook(SECRET)
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        try:
            payload = VERIFIER.verify(body, headers)
            valid = True
        except Exception as e:  # noqa: BLE001 - any failure is an invalid delivery
            payload = json.loads(body or b"{}")
            valid = False
            print(f"invalid delivery: {e}", file=sys.stderr, flush=True)
        data = payload.get("data", {})
        record = {
            "id": headers.get("webhook-id"),
            "valid": valid,
            "type": payload.get("type"),
            "seq": data.get("seq"),
            "run": data.get("run"),
            "run_seq": data.get("run_seq"),
        }
        with LOCK, open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(204 if valid else 400)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
