"""proto/PROTOCOL.md checked against itself, the C headers and the independent client p11proto.py.

Every example in the document is valid compact JSON; p11proto encodes each request example to
exactly the documented bytes and accepts each reply example's shape; the hex frame is the framed
request; the error-code table, the scheme names and the limits agree with common/ and proto/.
(The C side checks the same examples byte for byte in tests/unit/test_proto_msg.c; conformance
of the daemon itself is tested in test_p11_server_*.py.)
"""

import json
import re
import socket
from pathlib import Path

import pytest

import p11proto
from p11proto import ProtocolError

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "proto" / "PROTOCOL.md"


def load_examples():
    """[(kind, text, line number)] for every fenced block tagged `json request`, `json
    bad-request`, `json reply <op>` or `hex frame`; each holds one line."""
    found, kind = [], None
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        if line.startswith("```json ") or line.startswith("```hex "):
            kind = line[3:]
            continue
        if kind is not None:
            found.append((kind, line, number))
            kind = None
    return found


EXAMPLES = load_examples()
JSON_EXAMPLES = [e for e in EXAMPLES if e[0].startswith("json ")]
REQUESTS = [e for e in EXAMPLES if e[0] == "json request"]
REPLIES = [e for e in EXAMPLES if e[0].startswith("json reply ")]


def example_id(example):
    return f"line{example[2]}-{example[0].replace(' ', '-')}"


def err_h_codes():
    text = (REPO / "common" / "err.h").read_text()
    return set(re.findall(r'X\(TE_\w+,\s*-?\d+,\s*"([a-z_0-9]+)"', text)) - {"ok"}


def header_define(path, name):
    """The value of `#define name <expr>` in a C header, evaluated (simple integer expressions)."""
    m = re.search(rf"#define {name}\s+([^/\n]+)", (REPO / path).read_text())
    assert m, f"{name} not in {path}"
    expr = m.group(1).strip().replace("ULL", "")
    assert re.fullmatch(r"[\d\s()*+\-]+", expr), expr
    return eval(expr)  # noqa: S307 - digits and arithmetic only, checked above


# ---- the examples -------------------------------------------------------------------------------

def test_the_document_has_examples_for_every_operation():
    ops_requested = {json.loads(t)["op"] for _, t, _ in REQUESTS}
    ops_answered = {kind.split()[2] for kind, _, _ in REPLIES}
    basic = set(p11proto.OPS) - set(p11proto.ADMIN_OPS)
    assert basic <= ops_requested
    assert basic <= ops_answered
    assert ops_requested <= set(p11proto.OPS)
    assert [k for k, _, _ in EXAMPLES].count("hex frame") == 1
    assert any(k == "json bad-request" for k, _, _ in EXAMPLES)


@pytest.mark.parametrize("example", JSON_EXAMPLES, ids=example_id)
def test_every_example_is_valid_compact_json(example):
    kind, text, _ = example
    obj = p11proto.parse_body(text.encode())  # strict: no duplicates, an object
    assert json.loads(text) == obj
    # written exactly as a compact encoder writes it (section 3)
    assert p11proto.encode_body(obj) == text.encode()
    assert len(text.encode()) <= p11proto.MAX_FRAME


@pytest.mark.parametrize("example", REQUESTS + [e for e in EXAMPLES if e[0] == "json bad-request"],
                         ids=example_id)
def test_p11proto_encodes_each_request_example_to_the_documented_bytes(example):
    kind, text, _ = example
    members = json.loads(text)
    version, op, req_id = members.pop("v"), members.pop("op"), members.pop("id", None)
    # binary members go in as bytes, so the base64 path of the encoder is exercised too
    for name in p11proto.BINARY_MEMBERS:
        if name in members:
            members[name] = p11proto.b64decode(members[name])
    assert p11proto.encode_request(op, req_id, version=version, **members) == text.encode()

    if kind == "json bad-request":
        assert version != p11proto.PROTOCOL_VERSION
        return
    assert version == p11proto.PROTOCOL_VERSION
    allowed = p11proto.REQUEST_MEMBERS[op]
    assert set(members) <= set(allowed), f"{op} does not take {set(members) - set(allowed)}"
    assert {m for m, required in allowed.items() if required} <= set(members)
    if op == "sign":
        assert members["scheme"] in p11proto.SCHEMES
        assert len(members["digest"]) == p11proto.HASH_LEN[members["scheme"].rsplit("_", 1)[1]]


@pytest.mark.parametrize("example", REPLIES, ids=example_id)
def test_each_reply_example_has_the_documented_shape(example):
    kind, text, _ = example
    op = kind.split()[2]
    reply = p11proto.decode_reply(text.encode(), op)
    if not reply["ok"]:
        assert reply["error"]["code"] in err_h_codes()
        assert reply["error"]["message"].endswith(".")


def test_hex_frame_is_the_framed_request_before_it():
    index = next(i for i, e in enumerate(EXAMPLES) if e[0] == "hex frame")
    kind, body, _ = EXAMPLES[index - 1]
    assert kind == "json request"
    assert bytes.fromhex(EXAMPLES[index][1]) == p11proto.frame(body.encode())
    assert bytes.fromhex(EXAMPLES[index][1])[:4] == len(body).to_bytes(4, "big")


# ---- the document against common/ and proto/ ------------------------------------------------------

def test_error_code_table_lists_exactly_the_codes_of_err_h():
    text = DOC.read_text()
    table = text[text.index("Error codes"):text.index("A client that receives a code")]
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", table, re.M))
    assert documented == err_h_codes()


def test_scheme_names_match_common_sigscheme():
    source = (REPO / "common" / "sigscheme.c").read_text()
    names = re.findall(r'"((?:ecdsa|rsa_pkcs1|rsa_pss)_sha\d+)"', source)
    assert tuple(names) == p11proto.SCHEMES
    for name in names:
        assert f"`{name}`" in DOC.read_text()


def test_limits_agree_with_the_headers():
    text = DOC.read_text()
    assert header_define("proto/frame.h", "PROTO_MAX_FRAME") == p11proto.MAX_FRAME == 65536
    assert header_define("proto/frame.h", "PROTO_FRAME_HEADER_LEN") == p11proto.HEADER.size
    assert header_define("proto/msg.h", "PROTO_REQUEST_ID_MAX") == p11proto.MAX_INT
    rows = {
        "`uri`": ("PROTO_URI_MAX", "bytes"),
        "PINs": ("PROTO_PIN_MAX", "bytes"),
        "`signature`": ("PROTO_SIG_MAX", "bytes"),
        "`pem`": ("PROTO_PEM_MAX", "bytes"),
        "list entries (`tokens`, `keys`)": ("PROTO_LIST_MAX", None),
    }
    for label, (define, unit) in rows.items():
        value = header_define("proto/msg.h", define)
        cell = f"{value} {unit}" if unit else f"{value}"
        assert f"| {label} | {cell} |" in text, (label, cell)
    assert f"at most {header_define('proto/msg.h', 'PROTO_LABEL_MAX')} bytes" in text
    assert header_define("proto/msg.h", "PROTO_VERSION") == p11proto.PROTOCOL_VERSION


# ---- p11proto's own framing and reply checks ----------------------------------------------------

@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield p11proto.P11Client.from_socket(a, timeout=5), b
    a.close()
    b.close()


def test_read_frame_clean_close_split_and_truncated(pair):
    client, peer = pair
    body = b'{"v":1,"id":1,"ok":true,"result":{}}'
    wire = p11proto.frame(body)
    peer.sendall(wire[:3])
    peer.sendall(wire[3:10])
    peer.sendall(wire[10:] + wire[:6])  # the next frame starts in the same segment
    assert client.read_frame() == body
    peer.sendall(wire[6:])
    assert client.read_frame() == body
    peer.sendall(p11proto.HEADER.pack(10) + b"short")
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="inside a frame"):
        client.read_frame()


def test_read_frame_none_on_close_between_frames(pair):
    client, peer = pair
    peer.close()
    assert client.read_frame() is None


def test_read_frame_refuses_zero_and_oversized_lengths(pair):
    client, peer = pair
    peer.sendall(p11proto.HEADER.pack(0))
    with pytest.raises(ProtocolError, match="out of range"):
        client.read_frame()
    peer.sendall(p11proto.HEADER.pack(p11proto.MAX_FRAME + 1))
    with pytest.raises(ProtocolError, match="out of range"):
        client.read_frame()


def test_request_sends_a_fresh_id_and_checks_the_echo(pair):
    client, peer = pair
    peer.sendall(p11proto.frame(b'{"v":1,"id":1,"ok":true,"result":{"server_version":"x",'
                                b'"versions":[1]}}'))
    assert client.request("ping")["result"]["server_version"] == "x"
    sent = peer.recv(4096)
    assert sent == p11proto.frame(b'{"v":1,"op":"ping","id":1}')
    peer.sendall(p11proto.frame(b'{"v":1,"id":99,"ok":true,"result":{"server_version":"x",'
                                b'"versions":[1]}}'))
    with pytest.raises(ProtocolError, match="99"):
        client.request("ping")
    peer.sendall(p11proto.frame(b'{"v":1,"id":3,"ok":false,"error":{"code":"pin_incorrect",'
                                b'"message":"Wrong PIN.","ckr":160,"ckr_name":"CKR_PIN_INCORRECT",'
                                b'"retryable":false}}'))
    with pytest.raises(p11proto.ServerError) as e:
        client.call("sign", scheme="ecdsa_sha256", digest=bytes(32))
    assert (e.value.code, e.value.ckr, e.value.retryable) == ("pin_incorrect", 160, False)


@pytest.mark.parametrize("body", [
    b'{"v":1,"ok":true,"ok":true,"result":{}}',           # duplicate member
    b'{"v":1,"ok":true,"result":{},"error":{}}',          # both result and error
    b'{"v":1,"ok":false}',                                # failure without error
    b'{"v":2,"ok":true,"result":{}}',                     # another version
    b'{"v":1,"op":"ping","ok":true,"result":{}}',         # a request
    b'{"v":1,"ok":true,"result":{"x":NaN}}',              # not JSON
    b'{"v":1,"ok":false,"error":{"code":"ok","message":"","retryable":false}}',
    b'[1]',
    b'\xff',
])
def test_decode_reply_rejects(body):
    with pytest.raises(ProtocolError):
        p11proto.decode_reply(body)


def test_decode_reply_ignores_unknown_members():
    reply = p11proto.decode_reply(b'{"v":1,"id":1,"ok":true,"new":1,"result":{"server_version":'
                                  b'"x","versions":[1,2],"later":true}}', "ping")
    assert reply["result"]["versions"] == [1, 2]
