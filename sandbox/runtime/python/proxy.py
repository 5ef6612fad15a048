# The Python action proxy: OpenWhisk's action protocol on port 8080.
# POST /init loads the code once; POST /run calls its entry point with the
# parameters. Both stdout and stderr end every activation with the sentinel.
import json
import os
import signal
import sys
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
entry = None


def end_of_activation():
    sys.stdout.write(SENTINEL + "\n")
    sys.stdout.flush()
    sys.stderr.write(SENTINEL + "\n")
    sys.stderr.flush()


def load(value):
    main = value.get("main") or "main"
    if value.get("binary"):
        raise ValueError("binary (zip) actions are not supported by this runtime; send the code as text")
    code = value.get("code") or ""
    if not code.strip():
        raise ValueError("no code to initialize")
    scope = {"__name__": "__action__", "__file__": "/tmp/action.py"}
    exec(compile(code, "/tmp/action.py", "exec"), scope)
    fn = scope.get(main)
    if not callable(fn):
        raise LookupError("Action entrypoint '%s' is not a function." % main)
    return fn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global entry
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "the request body is not JSON"})
        if self.path == "/init":
            if entry is not None:
                return self.reply(403, {"error": "Cannot initialize the action more than once."})
            try:
                entry = load(body.get("value") or {})
                return self.reply(200, {"ok": True})
            except LookupError as e:
                end_of_activation()
                return self.reply(502, {"error": str(e)})
            except BaseException as e:
                traceback.print_exc()
                end_of_activation()
                return self.reply(502, {"error": "Initialization has failed due to: %s" % e})
        if self.path == "/run":
            if entry is None:
                return self.reply(403, {"error": "The action has not been initialized."})
            for k, v in body.items():
                if k != "value":
                    os.environ["__OW_" + k.upper()] = v if isinstance(v, str) else json.dumps(v)
            sdk = None
            try:
                if body.get("peerless_token"):
                    import peerless as sdk
                    sdk._start()
                result = entry(body.get("value") or {})
                if not isinstance(result, dict):
                    status, out = 200, result  # the platform calls a non-dictionary a developer error
                elif "error" in result:
                    status, out = 502, {"error": result["error"]}
                else:
                    status, out = 200, result
            except BaseException as e:
                traceback.print_exc()
                status, out = 502, {"error": "An error has occurred: %s" % e}
            if sdk is not None:
                sdk._end()
            end_of_activation()
            try:
                return self.reply(status, out)
            except (TypeError, ValueError):
                return self.reply(502, {"error": "The action did not return a JSON-serializable dictionary."})
        self.reply(404, {"error": "no such route"})


if __name__ == "__main__":
    sys.stdout = open(sys.stdout.fileno(), "w", buffering=1, closefd=False)
    # As PID 1 a TERM would be ignored until the engine's KILL; 143 (128 + 15) tells the daemon it came from outside.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
