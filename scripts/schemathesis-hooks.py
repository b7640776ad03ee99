"""Schemathesis hooks for scripts/schemathesis, and the seeding of the workspace it tests.

Loaded by schemathesis (SCHEMATHESIS_HOOKS=this file), the hooks
* sign the main data center's sending routes (`sendSignature`): X-Domicile-Key,
  X-Domicile-Timestamp and X-Domicile-Signature = v1=hex(HMAC-SHA256(secret,
  timestamp \\n METHOD \\n path \\n body)) over the bytes actually sent;
* sign the providers' callbacks (Twilio, WhatsApp, private SSP) as the provider would, with the
  secrets the workspace's providers hold; when a fuzzed `PUT …/providers/{channel}` replaced
  the provider a callback needs, they set the seeding's again first;
* give `POST /v1/operators/logout` a session of its own, so that logging out does not end the
  session every other operator route is tested with, and half the logins the operator's real
  credentials (all three fields at once, so that no wrong password counts towards a lockout);
* point most generated path parameters (workspace, customer, data-subject request, message)
  at what the workspace holds, so that routes answer from real data and not only `404` or
  `409`. Each choice depends on the generated value alone, so a seed replays it, and one value
  in a few is left as generated.

Run as `python3 scripts/schemathesis-hooks.py seed BASE_URL OUT.json`, it seeds the workspace
(providers, customers, data-subject requests, messages) and writes the ids it made to
OUT.json; as `… login BASE_URL`, it logs the operator in and prints the session token.

Everything comes from the environment: DOMICILE_WORKSPACE, DOMICILE_DATA_KEY,
DOMICILE_OPERATOR_EMAIL, DOMICILE_OPERATOR_PASSWORD, DOMICILE_OPERATOR_TOKEN,
DOMICILE_SEND_KEY_ID, DOMICILE_SEND_SECRET, DOMICILE_CALLBACK_SECRET (the secret of every
seeded provider: auth token, app secret, callback secret, verify token), DOMICILE_BASE_URL and
DOMICILE_SEED_FILE.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import MutableMapping

import requests

WORKSPACE = os.environ["DOMICILE_WORKSPACE"]


def env(name):
    return os.environ.get(name, "")


# MARK: Signing


def send_signature(secret, timestamp, method, path, body):
    """The main data center's request signature (Vault.sendSignature)."""
    message = f"{timestamp}\n{method}\n{path}\n".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def body_bytes(body):
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else bytes(body)


class SendSigner(requests.auth.AuthBase):
    """Signs a prepared request with the workspace's send key, over the path and bytes sent."""

    def __call__(self, prepared):
        timestamp = str(int(time.time()))
        prepared.headers["X-Domicile-Key"] = env("DOMICILE_SEND_KEY_ID")
        prepared.headers["X-Domicile-Timestamp"] = timestamp
        prepared.headers["X-Domicile-Signature"] = send_signature(
            env("DOMICILE_SEND_SECRET"), timestamp, prepared.method, prepared.path_url.split("?", 1)[0],
            body_bytes(prepared.body))
        return prepared


def form_fields(body):
    """The form's fields as the server reads them (CallbackController.formFields): split on `&`
    and the first `=`, `+` as a space, percent-decoded unless malformed."""
    def decode(text):
        text = text.replace("+", " ")
        if re.search(r"%(?![0-9A-Fa-f]{2})", text):
            return text
        try:
            return urllib.parse.unquote_to_bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return text
    pairs = []
    for pair in body.decode("utf-8", errors="replace").split("&"):
        if pair:
            name, _, value = pair.partition("=")
            pairs.append((decode(name), decode(value)))
    return pairs


class CallbackSigner(requests.auth.AuthBase):
    """Signs a provider's callback as that provider would."""

    def __init__(self, provider, settings):
        self.provider, self.settings = provider, settings

    def __call__(self, prepared):
        body = body_bytes(prepared.body)
        if self.provider == "twilio":
            fields = sorted(form_fields(body), key=lambda field: field[0])
            data = self.settings["status_callback"] + "".join(name + value for name, value in fields)
            mac = hmac.new(self.settings["auth_token"].encode(), data.encode(), hashlib.sha1).digest()
            prepared.headers["X-Twilio-Signature"] = base64.b64encode(mac).decode()
        elif self.provider == "whatsapp":
            mac = hmac.new(self.settings["app_secret"].encode(), body, hashlib.sha256).hexdigest()
            prepared.headers["X-Hub-Signature-256"] = "sha256=" + mac
        else:
            prepared.headers["X-Signature"] = hmac.new(self.settings["callback_secret"].encode(), body, hashlib.sha256).hexdigest()
        return prepared


# MARK: Requests of the seeding and of the hooks themselves


def call(base_url, method, path, body=None, headers=None, auth=None):
    """One request; returns (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth == "basic":
        token = base64.b64encode(f"{WORKSPACE}:{env('DOMICILE_DATA_KEY')}".encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    elif auth == "bearer":
        request.add_header("Authorization", "Bearer " + env("DOMICILE_OPERATOR_TOKEN"))
    elif auth == "send":
        timestamp = str(int(time.time()))
        request.add_header("X-Domicile-Key", env("DOMICILE_SEND_KEY_ID"))
        request.add_header("X-Domicile-Timestamp", timestamp)
        request.add_header("X-Domicile-Signature", send_signature(
            env("DOMICILE_SEND_SECRET"), timestamp, method, urllib.parse.urlsplit(request.full_url).path, data or b""))
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def expect(what, answer, *statuses):
    status, body = answer
    if status not in statuses:
        sys.exit(f"schemathesis hooks: {what} answered {status}, expected {statuses}: {body}")
    return body


def login(base_url):
    body = {"workspace": WORKSPACE, "email": env("DOMICILE_OPERATOR_EMAIL"), "password": env("DOMICILE_OPERATOR_PASSWORD")}
    return expect("login", call(base_url, "POST", "/v1/operators/login", body), 200)["token"]


def seeded_provider(kind):
    """The channel and settings of the seeding's provider of a kind. They deliver nowhere: port 9
    of the loopback interface, where nothing listens, so messages are retried and then
    dead-lettered without leaving the machine. Every secret is DOMICILE_CALLBACK_SECRET."""
    secret = env("DOMICILE_CALLBACK_SECRET")
    return {
        "private_ssp": ("sms", {"url": "http://127.0.0.1:9/send", "callback_secret": secret}),
        "twilio": ("sms", {"account_sid": "AC00000000000000000000000000000000", "auth_token": secret, "from": "+15005550006",
                           "base_url": "http://127.0.0.1:9", "status_callback": f"https://vault.example.com/v1/callbacks/twilio/{WORKSPACE}"}),
        "whatsapp_cloud": ("whatsapp", {"phone_number_id": "109876543210987", "access_token": "not-a-real-token",
                                        "base_url": "http://127.0.0.1:9/v20.0", "app_secret": secret, "verify_token": secret}),
        "smtp": ("email", {"host": "127.0.0.1", "port": "9", "tls": "none", "from": "offers@brand.example"}),
    }[kind]


def set_provider(base_url, kind):
    channel, settings = seeded_provider(kind)
    # The seeded providers are on loopback: the egress allowlist must name it (a fuzzed
    # PUT …/egress may have replaced the list).
    hosts = {"hosts": ["127.0.0.1", "api.twilio.com", "graph.facebook.com"]}
    expect("allowing loopback egress", call(base_url, "PUT", f"/v1/workspaces/{WORKSPACE}/egress", hosts, auth="bearer"), 200)
    answer = call(base_url, "PUT", f"/v1/workspaces/{WORKSPACE}/providers/{channel}", {"kind": kind, "settings": settings}, auth="bearer")
    expect(f"setting the {channel} provider", answer, 200)
    return channel, settings


# MARK: Seeding

# The customers the examples of openapi.yaml name (c-1001, 100234, c-2002), and a few more:
# an id that needs percent-encoding in a path, one that opted out of SMS, one that gets restricted.
CUSTOMERS = [
    {"type": "customer", "customer_id": "c-1001", "attributes": {
        "email": "jane@example.com", "mobile": "+971501234567", "first_name": "Jane", "last_name": "Doe",
        "birth_date": "1990-04-17", "loyalty_tier": "gold"}},
    {"type": "customer", "customer_id": "100234", "attributes": {
        "email": "omar@example.org", "city": "Dubai", "loyalty_points": 1200, "newsletter": True}},
    {"type": "customer", "customer_id": "c-2002", "attributes": {
        "mobile": "+971 50 765 4321", "name": "Layla Haddad", "email": "layla@example.net"}},
    {"type": "customer", "customer_id": "user 42 ü", "attributes": {
        "email": "jane@example.com", "first_name": "Jane", "sms_opt_out": True}},
    {"type": "customer", "customer_id": "c-3003", "attributes": {
        "email": "restricted@example.com", "mobile": "+971509876543"}},
]

MESSAGES = [
    {"message_id": "m-20261125-0001", "customer_id": "c-1001", "campaign_id": "otp-login", "channel": "sms",
     "content": {"text": "Hi {{first_name}}, your code is {{code}}"}, "data": {"code": "482913"}},
    {"message_id": "m-20261125-0002", "customer_id": "100234", "campaign_id": "spring-sale", "channel": "email",
     "content": {"subject": "20% off", "text": "Hello, use code {{promo}}."}, "data": {"promo": "SPRING20"}},
    {"message_id": "m-20261125-0003", "customer_id": "c-2002", "channel": "whatsapp",
     "content": {"template": {"name": "spring_offer", "language": "en_US", "parameters": ["{{name}}"]}}},
    {"message_id": "m-20261125-0004", "customer_id": "c-1001", "channel": "email",
     "content": {"subject": "Ünïcode ✓", "html": "<p>Hi {{first_name}}</p>"}},
]


def seed(base_url, out_path):
    for kind in ("private_ssp", "whatsapp_cloud", "smtp"):
        set_provider(base_url, kind)
    expect("ingest", call(base_url, "POST", f"/v1/transition/{WORKSPACE}", {"type": "transition", "elements": CUSTOMERS}, auth="basic"), 200)
    subject_requests = []
    for request_type, identity_type, value in [
            ("access", "id", "c-1001"), ("portability", "email", "jane@example.com"),
            ("portability", "mobile", "+971501234567"), ("restriction", "id", "c-3003")]:
        body = {"request_type": request_type, "api_version": "1.0",
                "identities": [{"identity_type": identity_type, "identity_value": value}]}
        answer = call(base_url, "POST", f"/v1/opengdpr_requests/{WORKSPACE}", body, auth="basic")
        subject_requests.append(expect(f"the {request_type} request", answer, 200)["request_id"])
    answer = expect("the send", call(base_url, "POST", f"/v1/workspaces/{WORKSPACE}/messages", {"messages": MESSAGES}, auth="send"), 202)
    if answer.get("status") != "accepted":
        sys.exit(f"schemathesis hooks: not every seeded message was accepted: {answer}")
    with open(out_path, "w") as out:
        json.dump({"customers": [customer["customer_id"] for customer in CUSTOMERS], "subject_requests": subject_requests,
                   "messages": [message["message_id"] for message in MESSAGES]}, out)
    print(f"Seeded {len(CUSTOMERS)} customers, {len(subject_requests)} data-subject requests, {len(MESSAGES)} messages")


# MARK: Hooks

if __name__ != "__main__":
    import schemathesis

    SEEDED = {}
    if env("DOMICILE_SEED_FILE"):
        with open(env("DOMICILE_SEED_FILE")) as seed_file:
            SEEDED = json.load(seed_file)

    SEND_PATHS = {"/v1/workspaces/{workspace}/messages", "/v1/workspaces/{workspace}/messages/{message_id}"}
    CALLBACK_PATH = "/v1/callbacks/{provider}/{workspace}"
    PROVIDER_PATH = "/v1/workspaces/{workspace}/providers/{channel}"
    LOGIN_PATH = "/v1/operators/login"
    LOGOUT_PATH = "/v1/operators/logout"

    # Each channel's provider as last set, (kind, settings): the seeding's, then whatever a
    # fuzzed PUT …/providers/{channel} stored.
    PROVIDERS = {channel: (kind, settings) for kind in ("private_ssp", "whatsapp_cloud", "smtp")
                 for channel, settings in [seeded_provider(kind)]}
    # The provider kind behind each callback, and the settings its signature needs.
    CALLBACK_KINDS = {"twilio": ("twilio", ["auth_token", "status_callback"]), "whatsapp": ("whatsapp_cloud", ["app_secret"]),
                      "private_ssp": ("private_ssp", ["callback_secret"])}

    def provider_for(callback, needs=None):
        """Settings of a provider the server holds for this callback, after setting the seeding's
        again when a fuzzed provider replaced it."""
        kind, names = CALLBACK_KINDS[callback]
        names = needs or names
        usable = [settings for provider_kind, settings in PROVIDERS.values()
                  if provider_kind == kind and all(isinstance(settings.get(name), str) and settings[name] for name in names)]
        if usable:
            return usable[0]
        channel, settings = set_provider(env("DOMICILE_BASE_URL"), kind)
        PROVIDERS[channel] = (kind, settings)
        return settings

    def bucket(value, buckets):
        """A stable choice from the generated value alone (Python's hash() is salted per process)."""
        return zlib.crc32(repr(value).encode()) % buckets

    def aim(container, name, known, keep_one_in):
        """Replaces a generated value by a known one, except for one value in `keep_one_in`."""
        if not known or not isinstance(container, MutableMapping) or name not in container:
            return
        value = container[name]
        if value in known or bucket(value, keep_one_in) == 0:
            return
        container[name] = known[bucket(value, len(known) * 7) % len(known)]

    @schemathesis.hook
    def before_call(context, case, kwargs):
        path, method = case.operation.path, case.operation.method.upper()
        parameters = case.path_parameters if isinstance(case.path_parameters, MutableMapping) else {}

        aim(parameters, "workspace", [WORKSPACE], 8)
        aim(parameters, "customer_id", SEEDED.get("customers", []), 3)
        if path.startswith("/v1/opengdpr_requests/"):
            aim(parameters, "request_id", SEEDED.get("subject_requests", []), 4)
        aim(parameters, "message_id", SEEDED.get("messages", []), 3)

        if path in SEND_PATHS:
            kwargs["auth"] = SendSigner()
        elif path == CALLBACK_PATH and method == "GET":
            if parameters.get("provider") == "whatsapp":
                aim(case.query, "hub.verify_token", [provider_for("whatsapp", ["verify_token"])["verify_token"]], 4)
        elif path == CALLBACK_PATH and method == "POST":
            if parameters.get("provider") in CALLBACK_KINDS and bucket(case.body, 8) != 0:
                kwargs["auth"] = CallbackSigner(parameters["provider"], provider_for(parameters["provider"]))
        elif path == LOGIN_PATH and method == "POST":
            body = case.body
            if isinstance(body, MutableMapping) and all(isinstance(body.get(name), str) for name in ("workspace", "email", "password")):
                if bucket(body, 2) == 0:
                    body.update(workspace=WORKSPACE, email=env("DOMICILE_OPERATOR_EMAIL"), password=env("DOMICILE_OPERATOR_PASSWORD"))
        elif path == LOGOUT_PATH and method == "POST":
            headers = case.headers
            if isinstance(headers, MutableMapping) and headers.get("Authorization") == "Bearer " + env("DOMICILE_OPERATOR_TOKEN"):
                headers["Authorization"] = "Bearer " + login(env("DOMICILE_BASE_URL"))

    @schemathesis.hook
    def after_call(context, case, response):
        if case.operation.path == PROVIDER_PATH and response.status_code == 200:
            channel, body = case.path_parameters.get("channel"), case.body
            if isinstance(body, MutableMapping) and isinstance(body.get("settings"), MutableMapping):
                PROVIDERS[channel] = (body.get("kind"), dict(body["settings"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "login":
        print(login(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: schemathesis-hooks.py login BASE_URL | seed BASE_URL OUT.json")
