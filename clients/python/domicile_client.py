"""Domicile client-mode envelopes: a reference encoder (docs/client-encryption.md).

A brand whose workspace is in client mode encrypts each PII value with its own 32-byte brand key
before it leaves its systems, and sends Domicile the envelope. This module makes and opens such
envelopes and computes the blind-index digests lookups use. It needs the `cryptography` package.

Values must be normalised first, as Domicile's vault mode would: e-mail addresses trimmed and
lower-cased, phone numbers in E.164 (+9715...). `domicile client encrypt` validates and
normalises for you; this encoder does not.

    python3 domicile_client.py encrypt --workspace acme --key brand.key --index-key index.key \
        [--indexed email --indexed mobile] [--plain plan] < payload.json > encrypted.json
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LABEL = b"domicile-client-v1"
STANDARD_INDEXED = ("email", "mobile")


def read_key(path):
    """A key file: the key's 32 bytes in standard base64 on one line."""
    with open(path, "rb") as handle:
        key = base64.b64decode(handle.read().strip(), validate=True)
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte key")
    return key


def key_id(key):
    """The first 8 bytes of SHA-256("domicile-client-key-id" || key), lower-case hex."""
    return hashlib.sha256(b"domicile-client-key-id" + key).digest()[:8].hex()


def associated_data(workspace, customer_id, attribute):
    return b"\x00".join([LABEL, workspace.encode(), customer_id.encode(), attribute.encode()])


def plaintext(value):
    """The bytes sealed: the value as compact JSON text (a string, a number or a boolean)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def index_text(value):
    return value if isinstance(value, str) else plaintext(value).decode()


def digest(index_key, attribute, value):
    """HMAC-SHA256(index key, attribute || 0x00 || normalised value)."""
    return hmac.new(index_key, attribute.encode() + b"\x00" + index_text(value).encode(), hashlib.sha256).digest()


def seal(key, workspace, customer_id, attribute, value, index_key=None, masked=None, nonce=None):
    """One envelope. `nonce` is for test vectors only: leave it out, a fresh random one is used."""
    nonce = nonce if nonce is not None else os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext(value), associated_data(workspace, customer_id, attribute))
    envelope = {
        "domicile_envelope": 1,
        "key_id": key_id(key),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    if masked is not None:
        envelope["masked"] = masked
    if index_key is not None:
        envelope["index"] = base64.b64encode(digest(index_key, attribute, value)).decode()
    return envelope


def open_envelope(keys, workspace, customer_id, attribute, envelope):
    """The value of an envelope; `keys` maps key ids to keys (raises when none fits or it was altered)."""
    key = keys[envelope["key_id"]]
    sealed = base64.b64decode(envelope["ciphertext"], validate=True)
    nonce = base64.b64decode(envelope["nonce"], validate=True)
    return json.loads(AESGCM(key).decrypt(nonce, sealed, associated_data(workspace, customer_id, attribute)))


def encrypt_payload(payload, workspace, key, index_key, indexed=STANDARD_INDEXED, plain=()):
    """An ingest payload ({"type":"transition","elements":[...]} or one customer) with envelopes."""
    elements = payload["elements"] if "elements" in payload else [payload]
    for element in elements:
        customer_id = element["customer_id"]
        attributes = element.get("attributes") or {}
        for name, value in list(attributes.items()):
            if value is None or name in plain:
                continue
            attributes[name] = seal(key, workspace, customer_id, name, value, index_key=index_key if name in indexed else None)
    return payload


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    encrypt = commands.add_parser("encrypt", help="encrypt an ingest payload read from stdin")
    encrypt.add_argument("--workspace", required=True)
    encrypt.add_argument("--key", required=True)
    encrypt.add_argument("--index-key", required=True)
    encrypt.add_argument("--indexed", action="append", default=list(STANDARD_INDEXED))
    encrypt.add_argument("--plain", action="append", default=[])
    arguments = parser.parse_args()
    payload = json.load(sys.stdin)
    result = encrypt_payload(payload, arguments.workspace, read_key(arguments.key), read_key(arguments.index_key),
                             indexed=arguments.indexed, plain=arguments.plain)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
