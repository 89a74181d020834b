#!/usr/bin/env python3
"""Synapsor Runner: app-owned writeback handler as a command (Python 3, standard library only).

The runner runs this command with the request on stdin and the signature header value in the
environment variable SYNAPSOR_SIGNATURE; the handler writes the receipt on stdout and exits 0.
(A non-zero exit without a valid receipt on stdout is recorded as `failed HANDLER_COMMAND_FAILED`.)

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

The "database" here is a SQLite file (SYNAPSOR_HANDLER_DB, default ./synapsor_handler_demo.db)
whose table is seeded once from the JSON file named by SYNAPSOR_HANDLER_DEMO_DATA
({"support_tickets": [rows]}). It stands in for your application's database; the transaction
below (BEGIN IMMEDIATE ... COMMIT, receipts table with the idempotency key as primary key) is the
pattern to keep.

Environment:
  SYNAPSOR_SIGNATURE                the X-Synapsor-Signature value (set by the runner)
  SYNAPSOR_HANDLER_SIGNING_SECRET   signing secret (>= 32 bytes), same as the runner's
  SYNAPSOR_HANDLER_KEY_ID           its key id (default "default")
  SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET / SYNAPSOR_HANDLER_PREVIOUS_KEY_ID
                                    optional second key, accepted while rotating
  SYNAPSOR_HANDLER_SKEW_SECS        timestamp window in seconds (default 300)
  SYNAPSOR_HANDLER_DB, SYNAPSOR_HANDLER_DEMO_DATA   the demo database (see above)

Wire format: docs/handlers.md and schemas/handler-request.schema.json in synapsor-runner.
"""

import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import time
from datetime import datetime, timedelta, timezone

REQUEST_SCHEMA = "synapsor.handler-request.v1"
RECEIPT_SCHEMA = "synapsor.handler-receipt.v1"
MAX_BODY_BYTES = 1024 * 1024

# Your app's policy: the actions this handler performs, and the only columns each may change.
# The request's allowed_columns come from the runner's config; this list is the one to trust.
ACTIONS = {
    "support.propose_ticket_priority": {"table": "support_tickets", "columns": ["priority"]},
    "support.propose_ticket_resolution": {"table": "support_tickets", "columns": ["status"]},
}
# Your tables, as your app knows them. SQL identifiers come only from here, never from a request.
TABLES = {
    "support_tickets": {
        "primary_key": "id",
        "tenant_column": "tenant_id",
        "version_column": "updated_at",
        "columns": ["id", "tenant_id", "subject", "priority", "status", "assignee", "updated_at"],
    },
}
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Rejection(Exception):
    def __init__(self, code, message=None):
        super().__init__(message or code)
        self.code = code


# ------------------------------------------------------------------------------ configuration


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


def q(identifier):
    """Quotes an identifier from TABLES (trusted, but quoted anyway)."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_value(v):
    return json.dumps(v) if isinstance(v, (dict, list)) else v


def open_db(path, demo_data):
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)  # we issue BEGIN ourselves
    conn.execute(
        "CREATE TABLE IF NOT EXISTS synapsor_handler_receipts ("
        " idempotency_key TEXT PRIMARY KEY, proposal_id TEXT NOT NULL,"
        " receipt_json TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    for name, table in TABLES.items():
        cols = ", ".join(q(c) + (" TEXT PRIMARY KEY" if c == table["primary_key"] else "") for c in table["columns"])
        conn.execute(f"CREATE TABLE IF NOT EXISTS {q(name)} ({cols})")
    if demo_data:
        with open(demo_data, encoding="utf-8") as f:
            data = json.load(f)
        conn.execute("BEGIN IMMEDIATE")
        for name, rows in data.items():
            table = TABLES.get(name)
            if table is None or conn.execute(f"SELECT COUNT(*) FROM {q(name)}").fetchone()[0] > 0:
                continue
            for row in rows:
                cols = [c for c in table["columns"] if c in row]
                conn.execute(
                    f"INSERT INTO {q(name)} ({', '.join(q(c) for c in cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [sql_value(row[c]) for c in cols],
                )
        conn.execute("COMMIT")
    return conn


# ------------------------------------------------------------------------------ verification


def parse_signature(value):
    if not value or not value.strip():
        raise Rejection("SIGNATURE_MISSING")
    parts = {}
    for part in value.split(","):
        name, eq, val = part.partition("=")
        if not eq:
            raise Rejection("SIGNATURE_MALFORMED")
        name = name.strip()
        if name not in ("t", "kid", "v1"):
            continue  # room for future schemes
        if name in parts:
            raise Rejection("SIGNATURE_MALFORMED")
        parts[name] = val.strip()
    t, kid, v1 = parts.get("t", ""), parts.get("kid", ""), parts.get("v1", "")
    if (
        not re.fullmatch(r"[0-9]{1,18}", t)
        or not KEY_ID_RE.match(kid)
        or not re.fullmatch(r"[0-9a-fA-F]{64}", v1)
    ):
        raise Rejection("SIGNATURE_MALFORMED")
    return t, kid, v1.lower()


def verify_signature(header, raw_body, keys, now_secs, skew_secs):
    """Steps 3-7 of the recipe: header, key id, MAC (constant time), window. Returns t."""
    t, kid, v1 = parse_signature(header)
    secret = keys.get(kid)
    if secret is None:
        raise Rejection("UNKNOWN_KEY_ID")
    expected = hmac.new(secret, t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, v1):
        raise Rejection("SIGNATURE_MISMATCH")
    if abs(now_secs - int(t)) > skew_secs:
        raise Rejection("TIMESTAMP_OUT_OF_WINDOW")
    return int(t)


REQUEST_KEYS = {
    "schema_version", "proposal_id", "idempotency_key", "issued_at", "dry_run", "executor", "action",
    "digest", "tenant", "principal", "target", "allowed_columns", "before", "patch", "after",
    "expected_version", "approvals",
}


def _exact(obj, required, optional=()):
    return isinstance(obj, dict) and required <= obj.keys() and obj.keys() <= (required | set(optional))


def parse_request(raw_body, t):
    """Step 8: the body is exactly a synapsor.handler-request.v1, issued at the signed time."""
    try:
        req = json.loads(raw_body)
    except ValueError:
        raise Rejection("REQUEST_INVALID", "body is not JSON")

    def column_value(v):
        return _exact(v, {"column", "value"}) and isinstance(v["column"], str)

    ok = (
        _exact(req, REQUEST_KEYS)
        and req["schema_version"] == REQUEST_SCHEMA
        and all(isinstance(req[k], str) for k in ("proposal_id", "idempotency_key", "executor", "action", "digest", "principal"))
        and isinstance(req["issued_at"], int) and not isinstance(req["issued_at"], bool)
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
        raise Rejection("REQUEST_INVALID", "body is not a synapsor.handler-request.v1")
    if req["issued_at"] != t:
        raise Rejection("REQUEST_INVALID", "issued_at differs from the signature timestamp")
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
    return type(na) is type(nb) and na == nb  # bool is an int in Python: keep True != 1


def receipt(status, rows_affected, error_code=None, **extra):
    r = {"schema_version": RECEIPT_SCHEMA, "status": status, "rows_affected": rows_affected}
    if error_code:
        r["error_code"] = error_code
    r.update(extra)
    return r


def check_policy(req):
    """Step 9: the action is one this app implements, and the patch stays inside its columns."""
    action = ACTIONS.get(req["action"])
    if action is None or action["table"] != req["target"]["table"]:
        return receipt("failed", 0, "UNSUPPORTED_ACTION")
    table = TABLES[action["table"]]
    if not req["patch"]:
        return receipt("failed", 0, "PATCH_EMPTY")
    for col in req["patch"]:
        never = col in (table["primary_key"], table["tenant_column"], req["target"]["primary_key"]["column"])
        if never or col not in req["allowed_columns"] or col not in action["columns"]:
            return receipt("failed", 0, "PATCH_COLUMN_NOT_ALLOWED", message=f"column {col} may not be changed")
    if req["expected_version"]["column"] != table["version_column"]:
        return receipt("failed", 0, "VERSION_GUARD_UNSUPPORTED")
    if not req["tenant"].get("column"):
        return receipt("failed", 0, "TENANT_REQUIRED")
    return None


def apply_in_transaction(conn, req):
    """Step 10: ONE transaction. BEGIN IMMEDIATE takes SQLite's write lock (the equivalent of
    SELECT ... FOR UPDATE); every early return rolls back."""
    name = ACTIONS[req["action"]]["table"]
    table = TABLES[name]
    pk, tenant_col, version_col = table["primary_key"], table["tenant_column"], table["version_column"]
    conn.execute("BEGIN IMMEDIATE")
    try:
        # 1. Idempotency first: after an applied write the version has moved, and a repeat
        #    must read as already_applied, not as a conflict.
        seen = conn.execute(
            "SELECT 1 FROM synapsor_handler_receipts WHERE idempotency_key = ?", (req["idempotency_key"],)
        ).fetchone()
        if seen:
            conn.execute("ROLLBACK")
            return receipt("already_applied", 0)
        # 2. The row by primary key AND tenant; another tenant's row is "not found".
        row = conn.execute(
            f"SELECT {q(version_col)} FROM {q(name)} WHERE {q(pk)} = ? AND {q(tenant_col)} = ?",
            (sql_value(req["target"]["primary_key"]["value"]), req["tenant"]["value"]),
        ).fetchone()
        if row is None:
            conn.execute("ROLLBACK")
            return receipt("conflict", 0, "ROW_NOT_FOUND")
        # 3. The version the person approved.
        if not versions_equal(row[0], req["expected_version"]["value"]):
            conn.execute("ROLLBACK")
            return receipt("conflict", 0, "VERSION_CONFLICT")
        # A dry run stops here: nothing written, the idempotency key not recorded.
        if req["dry_run"]:
            conn.execute("ROLLBACK")
            return receipt("applied", 0, message="dry run: nothing written")
        # 4. Write only the checked patch columns, and a new version; exactly one row.
        new_version = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cols = list(req["patch"])
        sets = ", ".join(f"{q(c)} = ?" for c in cols) + f", {q(version_col)} = ?"
        cur = conn.execute(
            f"UPDATE {q(name)} SET {sets} WHERE {q(pk)} = ? AND {q(tenant_col)} = ?",
            [sql_value(req["patch"][c]) for c in cols]
            + [new_version, sql_value(req["target"]["primary_key"]["value"]), req["tenant"]["value"]],
        )
        if cur.rowcount != 1:
            conn.execute("ROLLBACK")
            return receipt("failed", 0, "ROW_COUNT_MISMATCH")
        # 5. Record the key, and commit it with the write.
        body = receipt("applied", 1, new_version=new_version)
        conn.execute(
            "INSERT INTO synapsor_handler_receipts VALUES (?, ?, ?, ?)",
            (req["idempotency_key"], req["proposal_id"], json.dumps(body), new_version),
        )
        conn.execute("COMMIT")
        return body
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def main():
    env = os.environ
    try:
        keys = load_keys(env)
        skew = int(env.get("SYNAPSOR_HANDLER_SKEW_SECS", "300"))
    except (RuntimeError, ValueError) as e:
        print(f"synapsor handler: {e}", file=sys.stderr)
        return 2
    raw = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
    try:
        if len(raw) > MAX_BODY_BYTES:
            raise Rejection("REQUEST_INVALID", "body larger than 1 MiB")
        # The runner may end the body with a newline; the MAC covers the body without it.
        body = raw[:-1] if raw.endswith(b"\n") else raw
        t = verify_signature(env.get("SYNAPSOR_SIGNATURE"), body, keys, int(time.time()), skew)
        req = parse_request(body, t)
        out = check_policy(req)
        if out is None:
            conn = open_db(env.get("SYNAPSOR_HANDLER_DB", "synapsor_handler_demo.db"), env.get("SYNAPSOR_HANDLER_DEMO_DATA"))
            try:
                out = apply_in_transaction(conn, req)
            finally:
                conn.close()
    except Rejection as e:
        out = receipt("failed", 0, e.code)
    except Exception as e:  # log it; never send internals to the caller
        print(f"synapsor handler error: {type(e).__name__}", file=sys.stderr)
        out = receipt("failed", 0, "HANDLER_ERROR")
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
