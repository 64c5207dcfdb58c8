"""An independent client for the tedge-p11-server protocol, written from proto/PROTOCOL.md only.

It shares no code with the C implementation in proto/, so tests that use it check the daemon
against the document, not against itself. Standard library only (socket, struct, json, base64).

    with P11Client("/run/tedge/p11.sock", timeout=5) as c:
        reply = c.request("sign", uri="pkcs11:token=tedge", scheme="ecdsa_sha256",
                          digest=hashlib.sha256(b"data").digest())
        signature = b64decode(reply["result"]["signature"])

`request()` returns the parsed reply (a dict), also when it says ``"ok": false``; `call()`
returns the result or raises `ServerError`. For abuse tests: `send_raw()`, `send_frame()`,
`read_frame()` (None on a clean close) and `read_reply()`.
"""

import base64
import json
import socket
import struct

PROTOCOL_VERSION = 1
MAX_FRAME = 65536            # section 2: largest body
HEADER = struct.Struct(">I")  # section 2: u32 big-endian body length
MAX_INT = 2**53 - 1          # section 3: largest integer on the wire

OPS = ("ping", "key_info", "sign", "public_key", "list_tokens", "list_keys", "status",
       "init_token", "create_key", "delete_key", "change_pin")
ADMIN_OPS = ("init_token", "create_key", "delete_key", "change_pin")

# section 6: the members each operation takes (required ones marked True)
REQUEST_MEMBERS = {
    "ping": {},
    "key_info": {"uri": False, "pin": False},
    "sign": {"uri": False, "pin": False, "scheme": True, "digest": True},
    "public_key": {"uri": False, "pin": False},
    "list_tokens": {},
    "list_keys": {"uri": False, "pin": False},
    "status": {},
    "init_token": {"uri": False, "so_pin": True, "label": True, "pin": True},
    "create_key": {"uri": False, "pin": False, "key_type": True, "bits": False, "curve": False,
                   "label": True, "key_id": False},
    "delete_key": {"uri": True, "pin": False},
    "change_pin": {"uri": False, "user": False, "old_pin": True, "new_pin": True},
}
BINARY_MEMBERS = ("digest", "key_id")
SCHEMES = ("ecdsa_sha256", "ecdsa_sha384", "ecdsa_sha512",
           "rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512",
           "rsa_pss_sha256", "rsa_pss_sha384", "rsa_pss_sha512")
HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame or reply (PROTOCOL.md sections 2-5)."""


class ServerError(Exception):
    """A failure reply: code, message, ckr, ckr_name, retryable and the whole reply."""

    def __init__(self, reply):
        error = reply["error"]
        super().__init__(f"{error['code']}: {error['message']}")
        self.reply = reply
        self.code = error["code"]
        self.message = error["message"]
        self.ckr = error.get("ckr")
        self.ckr_name = error.get("ckr_name")
        self.retryable = error["retryable"]


# ---- encoding ---------------------------------------------------------------------------------

def b64(data):
    """Binary value -> base64 text (RFC 4648, padded)."""
    return base64.b64encode(bytes(data)).decode("ascii")


def b64decode(text):
    """Base64 text -> bytes, refusing anything but the canonical padded form (section 3)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as e:
        raise ProtocolError(f"not base64: {text!r}") from e
    if b64(raw) != text:
        raise ProtocolError(f"not canonical base64: {text!r}")
    return raw


def encode_body(obj):
    """A message as compact UTF-8 JSON (section 3)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def request_object(op, req_id=None, version=PROTOCOL_VERSION, **members):
    """The request as a dict in wire order: v, op, id, then the members as given. bytes values
    are base64-encoded; None is sent as null (which means "absent")."""
    obj = {"v": version, "op": op}
    if req_id is not None:
        obj["id"] = req_id
    for name, value in members.items():
        obj[name] = b64(value) if isinstance(value, (bytes, bytearray)) else value
    return obj


def encode_request(op, req_id=None, version=PROTOCOL_VERSION, **members):
    """The body of a request; see request_object()."""
    return encode_body(request_object(op, req_id, version, **members))


def frame(body):
    """Header + body (section 2). Any length is framed, so abuse tests can lie."""
    return HEADER.pack(len(body)) + body


# ---- decoding ---------------------------------------------------------------------------------

def _no_duplicates(pairs):
    obj = {}
    for name, value in pairs:
        if name in obj:
            raise ProtocolError(f"duplicate member {name!r}")
        obj[name] = value
    return obj


def _no_constants(name):
    raise ProtocolError(f"{name} is not JSON")


def parse_body(body):
    """bytes -> dict, with the strictness of section 3 that json does not apply by itself."""
    if not body:
        raise ProtocolError("empty body")
    try:
        text = body.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"not a JSON object: {e}") from e
    if not isinstance(obj, dict):
        raise ProtocolError("not a JSON object")
    return obj


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_INT


def _expect(cond, what):
    if not cond:
        raise ProtocolError(what)


def _check_key(key):
    _expect(isinstance(key, dict), "key must be an object")
    _expect(isinstance(key.get("type"), str), "key.type must be a string")
    _expect(_is_int(key.get("bits")), "key.bits must be an integer")
    _expect("curve" not in key or key["curve"] is None or isinstance(key["curve"], str),
            "key.curve must be a string or null")
    for name in ("label", "token_label", "uri"):
        _expect(isinstance(key.get(name), str), f"key.{name} must be a string")
    _expect(len(key["label"].encode()) <= 128, "key.label is too long")
    _expect(isinstance(key.get("key_id"), str), "key.key_id must be a string")
    _expect(len(b64decode(key["key_id"])) <= 64, "key.key_id is too long")
    _expect(isinstance(key.get("always_authenticate"), bool), "key.always_authenticate")
    _expect(isinstance(key.get("schemes"), list) and
            all(isinstance(s, str) for s in key["schemes"]), "key.schemes must be strings")


def _check_token(token):
    _expect(isinstance(token, dict), "token must be an object")
    _expect(_is_int(token.get("slot_id")), "token.slot_id must be an integer")
    _expect(_is_int(token.get("flags")), "token.flags must be an integer")
    for name, limit in (("label", 32), ("serial", 16), ("manufacturer", 32), ("model", 16)):
        _expect(isinstance(token.get(name), str), f"token.{name} must be a string")
        _expect(len(token[name].encode()) <= limit, f"token.{name} is too long")
    for name in ("login_required", "pin_count_low", "pin_final_try", "pin_locked"):
        _expect(isinstance(token.get(name), bool), f"token.{name} must be a boolean")
    _expect(isinstance(token.get("uri"), str), "token.uri must be a string")


def check_result(op, result):
    """Checks the result shape of op (section 6); raises ProtocolError."""
    _expect(isinstance(result, dict), "result must be an object")
    if op == "ping":
        _expect(isinstance(result.get("server_version"), str), "server_version")
        _expect(isinstance(result.get("versions"), list) and
                all(_is_int(v) for v in result["versions"]), "versions")
    elif op in ("key_info", "create_key"):
        _check_key(result)
    elif op == "sign":
        _expect(isinstance(result.get("signature"), str), "signature must be a string")
        sig = b64decode(result["signature"])
        _expect(0 < len(sig) <= 1024, "signature length")
    elif op == "public_key":
        _expect(isinstance(result.get("pem"), str) and len(result["pem"]) <= 8192, "pem")
        _expect(result["pem"].startswith("-----BEGIN PUBLIC KEY-----"), "pem is not SPKI PEM")
    elif op == "list_tokens":
        _expect(isinstance(result.get("tokens"), list) and len(result["tokens"]) <= 256, "tokens")
        for token in result["tokens"]:
            _check_token(token)
    elif op == "list_keys":
        _expect(isinstance(result.get("keys"), list) and len(result["keys"]) <= 256, "keys")
        for key in result["keys"]:
            _check_key(key)
    elif op == "status":
        _expect(isinstance(result.get("token_present"), bool), "token_present")
        _expect(isinstance(result.get("token_label"), str), "token_label")
        _expect(isinstance(result.get("module_path"), str), "module_path")
        for name in ("last_success", "signatures", "errors", "logins", "reloads"):
            _expect(_is_int(result.get(name)), f"{name} must be an integer")
    elif op == "init_token":
        _check_token(result)
    elif op in ("delete_key", "change_pin"):
        pass
    else:
        raise ProtocolError(f"unknown operation {op!r}")


def check_error(error):
    """Checks an error object (section 5)."""
    _expect(isinstance(error, dict), "error must be an object")
    code = error.get("code")
    _expect(isinstance(code, str) and code and code != "ok" and
            all(c.islower() or c.isdigit() or c == "_" for c in code), "error.code")
    _expect(isinstance(error.get("message"), str) and len(error["message"].encode()) <= 511,
            "error.message")
    _expect(isinstance(error.get("retryable"), bool), "error.retryable")
    if "ckr" in error:
        _expect(_is_int(error["ckr"]), "error.ckr must be an integer")
    if "ckr_name" in error:
        _expect("ckr" in error and isinstance(error["ckr_name"], str), "error.ckr_name")
    if "supported_versions" in error:
        _expect(isinstance(error["supported_versions"], list) and
                all(_is_int(v) for v in error["supported_versions"]), "supported_versions")


def decode_reply(body, op=None):
    """A reply body -> dict, checked against sections 3 and 5 (and the result shape of op when
    given). Unknown members are allowed, as the document says."""
    reply = parse_body(body)
    _expect(reply.get("v") == PROTOCOL_VERSION and _is_int(reply.get("v")), "reply version")
    _expect("op" not in reply, "a request, not a reply")
    _expect(isinstance(reply.get("ok"), bool), "reply.ok must be a boolean")
    if "id" in reply and reply["id"] is not None:
        _expect(_is_int(reply["id"]), "reply.id must be an integer")
    if reply["ok"]:
        _expect("result" in reply and "error" not in reply, "a success has result, not error")
        if op is not None:
            check_result(op, reply["result"])
    else:
        _expect("error" in reply and "result" not in reply, "a failure has error, not result")
        check_error(reply["error"])
    return reply


# ---- the client -------------------------------------------------------------------------------

class P11Client:
    """One connection to the daemon (sections 1 and 8): requests one at a time, each with an id,
    each reply checked. No reconnects: tests see exactly what the daemon does."""

    def __init__(self, path, timeout=5.0, sock=None):
        self.path = path
        self.timeout = timeout
        self.next_id = 1
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
        else:
            sock.settimeout(timeout)
        self.sock = sock

    @classmethod
    def from_socket(cls, sock, timeout=5.0):
        """A client over an already connected socket (e.g. one end of a socketpair)."""
        return cls(None, timeout=timeout, sock=sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # raw access, for abuse tests
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, body):
        self.send_raw(frame(body))

    def _recv_exact(self, n, started):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                if not data and not started:
                    return None
                raise ProtocolError(f"connection closed inside a frame ({len(data)} of {n} bytes)")
            data += chunk
        return data

    def read_frame(self, timeout=None):
        """The next frame's body; None when the peer closed the connection between frames.
        Raises ProtocolError on a truncated frame and socket.timeout on the deadline."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            header = self._recv_exact(HEADER.size, started=False)
            if header is None:
                return None
            (length,) = HEADER.unpack(header)
            _expect(0 < length <= MAX_FRAME, f"frame length {length} out of range")
            return self._recv_exact(length, started=True)
        finally:
            if timeout is not None:
                self.sock.settimeout(self.timeout)

    def read_reply(self, op=None, timeout=None):
        """The next reply, decoded and checked; None on a clean close."""
        body = self.read_frame(timeout)
        return None if body is None else decode_reply(body, op)

    # the normal way
    def request(self, op, **members):
        """Sends one request (with a fresh id) and returns the parsed reply dict, whether it is a
        success or a failure. Raises ProtocolError for a bad or mismatched reply or a close."""
        req_id = self.next_id
        self.next_id += 1
        self.send_frame(encode_request(op, req_id, **members))
        reply = self.read_reply(op if op in OPS else None)
        if reply is None:
            raise ProtocolError(f"the daemon closed the connection instead of answering {op}")
        _expect(reply.get("id") in (req_id, None), f"reply id {reply.get('id')} != {req_id}")
        return reply

    def call(self, op, **members):
        """request(), returning the result or raising ServerError for a failure reply."""
        reply = self.request(op, **members)
        if not reply["ok"]:
            raise ServerError(reply)
        return reply["result"]
