"""Synapsor Runner: app-owned writeback handler with FastAPI.

Run:  pip install -r requirements.txt && uvicorn app:app --host 127.0.0.1 --port 8080

==========================================================================================
IMPORTANT: YOUR HANDLER OWNS THE FINAL WRITE.
A request that verifies is an approved *intent*, not permission to skip checks. In ONE
database transaction with the write, this handler must:
  1. record the idempotency key (answer `already_applied` when it is already recorded);
  2. lock the row by primary key AND tenant (a row of another tenant is "not found");
  3. compare the row's version with expected_version (`conflict VERSION_CONFLICT`);
  4. change only the columns YOUR code allows for this action;
  5. commit the write and the idempotency record together, or neither.
==========================================================================================

The "database" here is an in-memory dict seeded from the JSON file named by
SYNAPSOR_HANDLER_DEMO_DATA ({"support_tickets": [rows]}), guarded by a lock. It stands in for
your application's database: replace `DB` and `apply_in_transaction` with your own transaction
(e.g. SQLAlchemy `with session.begin():` and `SELECT ... FOR UPDATE`), keeping the order.

Environment:
  SYNAPSOR_HANDLER_SIGNING_SECRET   signing secret (>= 32 bytes), same as the runner's
  SYNAPSOR_HANDLER_KEY_ID           its key id (default "default")
  SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET / SYNAPSOR_HANDLER_PREVIOUS_KEY_ID
                                    optional second key, accepted while rotating
  SYNAPSOR_HANDLER_TOKEN            optional bearer token to require
  SYNAPSOR_HANDLER_SKEW_SECS        timestamp window in seconds (default 300)
  SYNAPSOR_HANDLER_DEMO_DATA        demo rows (see above)

Wire format: docs/handlers.md and schemas/handler-request.schema.json in synapsor-runner.
"""

import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

PATH = "/synapsor/apply"
REQUEST_SCHEMA = "synapsor.handler-request.v1"
RECEIPT_SCHEMA = "synapsor.handler-receipt.v1"
MAX_BODY_BYTES = 1024 * 1024

# Your app's policy: the actions this handler performs, and the only columns each may change.
# The request's allowed_columns come from the runner's config; this list is the one to trust.
ACTIONS = {
    "support.propose_ticket_priority": {"table": "support_tickets", "columns": ["priority"]},
    "support.propose_ticket_resolution": {"table": "support_tickets", "columns": ["status"]},
}
# Your tables: key, tenant and version columns as your app knows them.
TABLES = {
    "support_tickets": {"primary_key": "id", "tenant_column": "tenant_id", "version_column": "updated_at"},
}

log = logging.getLogger("synapsor.handler")

# ------------------------------------------------------------------------------ configuration

KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def load_keys(env):
    keys = {}
    for kid_var, secret_var, required in (
        ("SYNAPSOR_HANDLER_KEY_ID", "SYNAPSOR_HANDLER_SIGNING_SECRET", True),
        ("SYNAPSOR_HANDLER_PREVIOUS_KEY_ID", "SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET", False),
    ):
        secret = env.get(secret_var)
        if not secret:
            if required:
                raise RuntimeError(f"{secret_var} is not set")
            continue
        if len(secret.encode()) < 32:
            raise RuntimeError(f"{secret_var} must be at least 32 bytes")
        kid = env.get(kid_var) or "default"
        if not KEY_ID_RE.match(kid):
            raise RuntimeError(f"{kid_var} is not a valid key id")
        keys[kid] = secret.encode()
    return keys


def load_demo_data(path):
    db = {"tables": {name: {} for name in TABLES}, "applied_keys": {}, "lock": threading.Lock()}
    if path:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        for name, rows in data.items():
            if name in TABLES:
                pk = TABLES[name]["primary_key"]
                for row in rows:
                    db["tables"][name][str(row[pk])] = dict(row)
    return db


KEYS = load_keys(os.environ)
TOKEN = os.environ.get("SYNAPSOR_HANDLER_TOKEN") or None
SKEW_SECS = int(os.environ.get("SYNAPSOR_HANDLER_SKEW_SECS", "300"))
DB = load_demo_data(os.environ.get("SYNAPSOR_HANDLER_DEMO_DATA"))

# ------------------------------------------------------------------------------ verification


class Rejection(Exception):
    def __init__(self, http_status, code, message=None):
        super().__init__(message or code)
        self.http_status = http_status
        self.code = code


def parse_signature(value):
    if not value or not value.strip():
        raise Rejection(401, "SIGNATURE_MISSING")
    parts = {}
    for part in value.split(","):
        name, eq, val = part.partition("=")
        if not eq:
            raise Rejection(401, "SIGNATURE_MALFORMED")
        name = name.strip()
        if name not in ("t", "kid", "v1"):
            continue  # room for future schemes
        if name in parts:
            raise Rejection(401, "SIGNATURE_MALFORMED")
        parts[name] = val.strip()
    t, kid, v1 = parts.get("t", ""), parts.get("kid", ""), parts.get("v1", "")
    if (
        not re.fullmatch(r"[0-9]{1,18}", t)
        or not KEY_ID_RE.match(kid)
        or not re.fullmatch(r"[0-9a-fA-F]{64}", v1)
    ):
        raise Rejection(401, "SIGNATURE_MALFORMED")
    return t, kid, v1.lower()


def verify_signature(header, raw_body, keys, now_secs, skew_secs):
    """Steps 3-7 of the recipe: header, key id, MAC (constant time), window. Returns t."""
    t, kid, v1 = parse_signature(header)
    secret = keys.get(kid)
    if secret is None:
        raise Rejection(401, "UNKNOWN_KEY_ID")
    expected = hmac.new(secret, t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, v1):
        raise Rejection(401, "SIGNATURE_MISMATCH")
    if abs(now_secs - int(t)) > skew_secs:
        raise Rejection(401, "TIMESTAMP_OUT_OF_WINDOW")
    return int(t)


REQUEST_KEYS = {
    "schema_version", "proposal_id", "idempotency_key", "issued_at", "dry_run", "executor", "action",
    "digest", "tenant", "principal", "target", "allowed_columns", "before", "patch", "after",
    "expected_version", "approvals",
}


def _exact(obj, required, optional=()):
    return isinstance(obj, dict) and required <= obj.keys() and obj.keys() <= (required | set(optional))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_request(raw_body, t):
    """Step 8: the body is exactly a synapsor.handler-request.v1, issued at the signed time."""
    try:
        req = json.loads(raw_body)
    except ValueError:
        raise Rejection(400, "REQUEST_INVALID", "body is not JSON")

    def column_value(v):
        return _exact(v, {"column", "value"}) and isinstance(v["column"], str)

    ok = (
        _exact(req, REQUEST_KEYS)
        and req["schema_version"] == REQUEST_SCHEMA
        and all(isinstance(req[k], str) for k in ("proposal_id", "idempotency_key", "executor", "action", "digest", "principal"))
        and _is_int(req["issued_at"])
        and isinstance(req["dry_run"], bool)
        and _exact(req["tenant"], {"value"}, ("column",))
        and isinstance(req["tenant"]["value"], str)
        and isinstance(req["tenant"].get("column"), (str, type(None)))
        and _exact(req["target"], {"source", "schema", "table", "primary_key"})
        and all(isinstance(req["target"][k], str) for k in ("source", "schema", "table"))
        and column_value(req["target"]["primary_key"])
        and isinstance(req["allowed_columns"], list)
        and all(isinstance(c, str) for c in req["allowed_columns"])
        and all(isinstance(req[k], dict) for k in ("before", "patch", "after"))
        and column_value(req["expected_version"])
        and isinstance(req["approvals"], list)
        and all(
            _exact(a, {"approver", "approved_at"}) and isinstance(a["approver"], str) and isinstance(a["approved_at"], str)
            for a in req["approvals"]
        )
    )
    if not ok:
        raise Rejection(400, "REQUEST_INVALID", "body is not a synapsor.handler-request.v1")
    if req["issued_at"] != t:
        raise Rejection(400, "REQUEST_INVALID", "issued_at differs from the signature timestamp")
    return req


# ------------------------------------------------------------------------------ guards

TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def normalize_timestamp(s):
    """'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC, microseconds) for a date-time string, else None.
    The same normalization the runner uses (docs/handlers.md, "Comparing versions")."""
    m = TIMESTAMP_RE.match(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(g) for g in m.groups()[:6])
    offset = 0
    tz = m.group(8)
    if tz and tz not in ("Z", "z"):
        digits = tz[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:] or 0)
        if oh > 23 or om > 59:
            return None
        offset = (-1 if tz[0] == "-" else 1) * (oh * 60 + om)
    micros = int((m.group(7) or "").ljust(6, "0")[:6])
    try:
        local = datetime(y, mo, d, h, mi, se, micros, tzinfo=timezone(timedelta(minutes=offset)))
        utc = local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def normalize_version(v):
    if isinstance(v, str):
        ts = normalize_timestamp(v)
        if ts is not None:
            return ts
        if re.fullmatch(r"-?(0|[1-9][0-9]*)", v) and v != "-0":
            return int(v)
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def versions_equal(a, b):
    na, nb = normalize_version(a), normalize_version(b)
    # bool is an int in Python: keep True != 1, as in JSON.
    return type(na) is type(nb) and na == nb


def same_tenant(row_value, tenant):
    if isinstance(row_value, bool):
        return False
    if isinstance(row_value, str):
        return row_value == tenant
    if isinstance(row_value, int):
        return str(row_value) == tenant
    return False


def receipt(status, rows_affected, error_code=None, **extra):
    r = {"schema_version": RECEIPT_SCHEMA, "status": status, "rows_affected": rows_affected}
    if error_code:
        r["error_code"] = error_code
    r.update(extra)
    return r


def failed(code, message=None):
    return 422, receipt("failed", 0, code, **({"message": message} if message else {}))


def conflict(code):
    return 200, receipt("conflict", 0, code)


def check_policy(req):
    """Step 9: the action is one this app implements, and the patch stays inside its columns."""
    action = ACTIONS.get(req["action"])
    if action is None or action["table"] != req["target"]["table"]:
        return failed("UNSUPPORTED_ACTION")
    table = TABLES[action["table"]]
    if not req["patch"]:
        return failed("PATCH_EMPTY")
    for col in req["patch"]:
        never = col in (table["primary_key"], table["tenant_column"], req["target"]["primary_key"]["column"])
        if never or col not in req["allowed_columns"] or col not in action["columns"]:
            return failed("PATCH_COLUMN_NOT_ALLOWED", f"column {col} may not be changed")
    if req["expected_version"]["column"] != table["version_column"]:
        return failed("VERSION_GUARD_UNSUPPORTED")
    if not req["tenant"].get("column"):
        return failed("TENANT_REQUIRED")
    return None


def apply_in_transaction(db, req):
    """Step 10: everything below is ONE transaction. Here a lock makes it atomic; with a real
    database: BEGIN ... COMMIT, and SELECT ... FOR UPDATE."""
    table_name = ACTIONS[req["action"]]["table"]
    table = TABLES[table_name]
    with db["lock"]:
        # 1. Idempotency first: after an applied write the version has moved, and a repeat
        #    must read as already_applied, not as a conflict.
        if req["idempotency_key"] in db["applied_keys"]:
            return 200, receipt("already_applied", 0)
        # 2. The row by primary key AND tenant; another tenant's row is "not found".
        row = db["tables"][table_name].get(str(req["target"]["primary_key"]["value"]))
        if row is None or not same_tenant(row.get(table["tenant_column"]), req["tenant"]["value"]):
            return conflict("ROW_NOT_FOUND")
        # 3. The version the person approved.
        if not versions_equal(row.get(table["version_column"]), req["expected_version"]["value"]):
            return conflict("VERSION_CONFLICT")
        # A dry run stops here: nothing written, the idempotency key not recorded.
        if req["dry_run"]:
            return 200, receipt("applied", 0, message="dry run: nothing written")
        # 4. Write only the checked patch columns, and a new version.
        row.update(req["patch"])
        new_version = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        row[table["version_column"]] = new_version
        # 5. Record the key with the write ("commit").
        body = receipt("applied", 1, new_version=new_version)
        db["applied_keys"][req["idempotency_key"]] = body
        return 200, body


def token_matches(header, token):
    return hmac.compare_digest((header or "").encode(), f"Bearer {token}".encode())


def handle(headers, raw_body, now_secs=None):
    now_secs = int(time.time()) if now_secs is None else now_secs
    try:
        if TOKEN and not token_matches(headers.get("authorization"), TOKEN):
            raise Rejection(401, "UNAUTHORIZED")
        t = verify_signature(headers.get("x-synapsor-signature"), raw_body, KEYS, now_secs, SKEW_SECS)
        req = parse_request(raw_body, t)
        return check_policy(req) or apply_in_transaction(DB, req)
    except Rejection as e:
        return e.http_status, receipt("failed", 0, e.code)
    except Exception:  # log it; never send internals to the caller
        log.exception("handler error")
        return 500, receipt("failed", 0, "HANDLER_ERROR")


# ------------------------------------------------------------------------------ server

app = FastAPI(title="Synapsor writeback handler")


@app.post(PATH)
async def synapsor_apply(request: Request):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return JSONResponse(receipt("failed", 0, "REQUEST_INVALID", message="body larger than 1 MiB"), status_code=413)
    raw = await request.body()  # the exact bytes: the MAC is over these, not re-serialized JSON
    if len(raw) > MAX_BODY_BYTES:
        return JSONResponse(receipt("failed", 0, "REQUEST_INVALID", message="body larger than 1 MiB"), status_code=413)
    status, body = handle(request.headers, raw)
    return JSONResponse(body, status_code=status)
