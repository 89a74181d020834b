#!/usr/bin/env node
// Synapsor Runner: app-owned writeback handler over HTTP.
// Node.js >= 20, no npm packages (node:http, node:crypto only).
//
// ==========================================================================================
// IMPORTANT: YOUR HANDLER OWNS THE FINAL WRITE.
// A request that verifies is an approved *intent*, not permission to skip checks. In ONE
// database transaction with the write, this handler must:
//   1. record the idempotency key (answer `already_applied` when it is already recorded);
//   2. lock the row by primary key AND tenant (a row of another tenant is "not found");
//   3. compare the row's version with expected_version (`conflict VERSION_CONFLICT`);
//   4. change only the columns YOUR code allows for this action;
//   5. commit the write and the idempotency record together, or neither.
// ==========================================================================================
//
// The "database" here is an in-memory Map seeded from the JSON file named by
// SYNAPSOR_HANDLER_DEMO_DATA ({"support_tickets": [rows]}). It stands in for your application's
// database: replace `db` and `applyInTransaction` with your own transaction, keeping the order.
//
// Environment:
//   SYNAPSOR_HANDLER_SIGNING_SECRET   signing secret (>= 32 bytes), same as the runner's
//   SYNAPSOR_HANDLER_KEY_ID           its key id (default "default")
//   SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET / SYNAPSOR_HANDLER_PREVIOUS_KEY_ID
//                                     optional second key, accepted while rotating
//   SYNAPSOR_HANDLER_TOKEN            optional bearer token to require
//   SYNAPSOR_HANDLER_SKEW_SECS        timestamp window in seconds (default 300)
//   SYNAPSOR_HANDLER_DEMO_DATA        demo rows (see above)
//   HOST, PORT                        where to listen (default 127.0.0.1:8080; PORT=0 picks one)
//
// Wire format: docs/handlers.md and schemas/handler-request.schema.json in synapsor-runner.

import http from "node:http";
import crypto from "node:crypto";
import fs from "node:fs";
import { pathToFileURL } from "node:url";

const PATH = "/synapsor/apply";
const REQUEST_SCHEMA = "synapsor.handler-request.v1";
const RECEIPT_SCHEMA = "synapsor.handler-receipt.v1";
const MAX_BODY_BYTES = 1024 * 1024;

// Your app's policy: the actions this handler performs, and the only columns each may change.
// The request's allowed_columns come from the runner's config; this list is the one to trust.
const ACTIONS = {
  "support.propose_ticket_priority": { table: "support_tickets", columns: ["priority"] },
  "support.propose_ticket_resolution": { table: "support_tickets", columns: ["status"] },
};
// Your tables: key, tenant and version columns as your app knows them.
const TABLES = {
  support_tickets: { primaryKey: "id", tenantColumn: "tenant_id", versionColumn: "updated_at" },
};

// ------------------------------------------------------------------------------ configuration

function loadKeys(env) {
  const keys = new Map();
  const add = (kidVar, secretVar, required) => {
    const secret = env[secretVar];
    if (!secret) {
      if (required) throw new Error(`${secretVar} is not set`);
      return;
    }
    if (Buffer.byteLength(secret) < 32) throw new Error(`${secretVar} must be at least 32 bytes`);
    const kid = env[kidVar] || "default";
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(kid)) throw new Error(`${kidVar} is not a valid key id`);
    keys.set(kid, Buffer.from(secret));
  };
  add("SYNAPSOR_HANDLER_KEY_ID", "SYNAPSOR_HANDLER_SIGNING_SECRET", true);
  add("SYNAPSOR_HANDLER_PREVIOUS_KEY_ID", "SYNAPSOR_HANDLER_PREVIOUS_SIGNING_SECRET", false);
  return keys;
}

function loadDemoData(path) {
  const db = { tables: {}, appliedKeys: new Map() };
  for (const name of Object.keys(TABLES)) db.tables[name] = new Map();
  if (!path) return db;
  const data = JSON.parse(fs.readFileSync(path, "utf8"));
  for (const [name, rows] of Object.entries(data)) {
    const table = TABLES[name];
    if (!table) continue;
    for (const row of rows) db.tables[name].set(String(row[table.primaryKey]), { ...row });
  }
  return db;
}

// ------------------------------------------------------------------------------ verification

class Rejection extends Error {
  constructor(httpStatus, code, message) {
    super(message || code);
    this.httpStatus = httpStatus;
    this.code = code;
  }
}

function parseSignature(value) {
  if (!value || !value.trim()) throw new Rejection(401, "SIGNATURE_MISSING");
  const parts = {};
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new Rejection(401, "SIGNATURE_MALFORMED");
    const name = part.slice(0, eq).trim();
    if (!["t", "kid", "v1"].includes(name)) continue; // room for future schemes
    if (name in parts) throw new Rejection(401, "SIGNATURE_MALFORMED");
    parts[name] = part.slice(eq + 1).trim();
  }
  const { t, kid, v1 } = parts;
  if (!/^[0-9]{1,18}$/.test(t || "") || !/^[A-Za-z0-9_.-]{1,64}$/.test(kid || "") || !/^[0-9a-fA-F]{64}$/.test(v1 || "")) {
    throw new Rejection(401, "SIGNATURE_MALFORMED");
  }
  return { t: Number(t), tText: t, kid, v1: Buffer.from(v1, "hex") };
}

// Steps 3-7 of the recipe: header, key id, MAC (constant time), window.
function verifySignature(header, rawBody, keys, nowSecs, skewSecs) {
  const sig = parseSignature(header);
  const secret = keys.get(sig.kid);
  if (!secret) throw new Rejection(401, "UNKNOWN_KEY_ID");
  const expected = crypto.createHmac("sha256", secret).update(`${sig.tText}.`).update(rawBody).digest();
  if (!crypto.timingSafeEqual(expected, sig.v1)) throw new Rejection(401, "SIGNATURE_MISMATCH");
  if (Math.abs(nowSecs - sig.t) > skewSecs) throw new Rejection(401, "TIMESTAMP_OUT_OF_WINDOW");
  return sig;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isString = (v) => typeof v === "string";

function exactKeys(obj, required, optional = []) {
  if (!isObject(obj)) return false;
  const allowed = new Set([...required, ...optional]);
  return required.every((k) => k in obj) && Object.keys(obj).every((k) => allowed.has(k));
}

const REQUEST_KEYS = [
  "schema_version", "proposal_id", "idempotency_key", "issued_at", "dry_run", "executor", "action",
  "digest", "tenant", "principal", "target", "allowed_columns", "before", "patch", "after",
  "expected_version", "approvals",
];

// Step 8: the body is exactly a synapsor.handler-request.v1, issued at the signed time.
function parseRequest(rawBody, t) {
  let req;
  try {
    req = JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw new Rejection(400, "REQUEST_INVALID", "body is not JSON");
  }
  const columnValue = (v) => exactKeys(v, ["column", "value"]) && isString(v.column);
  const ok =
    exactKeys(req, REQUEST_KEYS) &&
    req.schema_version === REQUEST_SCHEMA &&
    [req.proposal_id, req.idempotency_key, req.executor, req.action, req.digest, req.principal].every(isString) &&
    Number.isInteger(req.issued_at) &&
    typeof req.dry_run === "boolean" &&
    exactKeys(req.tenant, ["value"], ["column"]) &&
    isString(req.tenant.value) &&
    (req.tenant.column === undefined || req.tenant.column === null || isString(req.tenant.column)) &&
    exactKeys(req.target, ["source", "schema", "table", "primary_key"]) &&
    [req.target.source, req.target.schema, req.target.table].every(isString) &&
    columnValue(req.target.primary_key) &&
    Array.isArray(req.allowed_columns) && req.allowed_columns.every(isString) &&
    isObject(req.before) && isObject(req.patch) && isObject(req.after) &&
    columnValue(req.expected_version) &&
    Array.isArray(req.approvals) &&
    req.approvals.every((a) => exactKeys(a, ["approver", "approved_at"]) && isString(a.approver) && isString(a.approved_at));
  if (!ok) throw new Rejection(400, "REQUEST_INVALID", "body is not a synapsor.handler-request.v1");
  if (req.issued_at !== t) throw new Rejection(400, "REQUEST_INVALID", "issued_at differs from the signature timestamp");
  return req;
}

// ------------------------------------------------------------------------------ guards

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

// "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC, microseconds) for a date-time string, else null.
// The same normalization the runner uses (docs/handlers.md, "Comparing versions").
function normalizeTimestamp(s) {
  const m = TIMESTAMP.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  const daysInMonth = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth[mo - 1] || h > 23 || mi > 59 || se > 59) return null;
  let offsetMin = 0;
  const tz = m[8];
  if (tz && tz !== "Z" && tz !== "z") {
    const digits = tz.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (oh > 23 || om > 59) return null;
    offsetMin = (tz[0] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it maps years 0-99 to 1900-1999
  date.setUTCHours(h, mi, se, 0);
  const iso = new Date(date.getTime() - offsetMin * 60000).toISOString();
  if (iso.length !== 24) return null; // outside years 0000-9999
  const micros = (m[7] || "").padEnd(6, "0").slice(0, 6);
  return `${iso.slice(0, 19)}.${micros}Z`;
}

function normalizeVersion(v) {
  if (typeof v === "string") {
    const ts = normalizeTimestamp(v);
    if (ts !== null) return ts;
    if (/^-?(0|[1-9][0-9]*)$/.test(v) && v !== "-0" && Number.isSafeInteger(Number(v))) return Number(v);
  }
  return v;
}

const versionsEqual = (a, b) => JSON.stringify(normalizeVersion(a)) === JSON.stringify(normalizeVersion(b));

const sameTenant = (rowValue, tenant) =>
  (typeof rowValue === "string" && rowValue === tenant) || (typeof rowValue === "number" && String(rowValue) === tenant);

function receipt(status, rowsAffected, errorCode, extra = {}) {
  const r = { schema_version: RECEIPT_SCHEMA, status, rows_affected: rowsAffected };
  if (errorCode) r.error_code = errorCode;
  return { ...r, ...extra };
}
const failed = (code, message) => ({ httpStatus: 422, body: receipt("failed", 0, code, message ? { message } : {}) });
const conflict = (code) => ({ httpStatus: 200, body: receipt("conflict", 0, code) });

// Step 9: the action is one this app implements, and the patch stays inside its columns.
function checkPolicy(req) {
  const action = ACTIONS[req.action];
  if (!action || action.table !== req.target.table) return failed("UNSUPPORTED_ACTION");
  const table = TABLES[action.table];
  const columns = Object.keys(req.patch);
  if (columns.length === 0) return failed("PATCH_EMPTY");
  for (const col of columns) {
    const never = col === table.primaryKey || col === table.tenantColumn || col === req.target.primary_key.column;
    if (never || !req.allowed_columns.includes(col) || !action.columns.includes(col)) {
      return failed("PATCH_COLUMN_NOT_ALLOWED", `column ${col} may not be changed`);
    }
  }
  if (req.expected_version.column !== table.versionColumn) return failed("VERSION_GUARD_UNSUPPORTED");
  if (!req.tenant.column) return failed("TENANT_REQUIRED");
  return null;
}

// Step 10: everything below runs as ONE transaction. Here the event loop makes this synchronous
// function atomic; with a real database: BEGIN ... COMMIT, and SELECT ... FOR UPDATE.
function applyInTransaction(db, req) {
  const table = TABLES[ACTIONS[req.action].table];
  // 1. Idempotency first: after an applied write the version has moved, and a repeat must
  //    read as already_applied, not as a conflict.
  if (db.appliedKeys.has(req.idempotency_key)) {
    return { httpStatus: 200, body: receipt("already_applied", 0) };
  }
  // 2. The row by primary key AND tenant; another tenant's row is "not found".
  const row = db.tables[ACTIONS[req.action].table].get(String(req.target.primary_key.value));
  if (!row || !sameTenant(row[table.tenantColumn], req.tenant.value)) return conflict("ROW_NOT_FOUND");
  // 3. The version the person approved.
  if (!versionsEqual(row[table.versionColumn], req.expected_version.value)) return conflict("VERSION_CONFLICT");
  // A dry run stops here: nothing written, the idempotency key not recorded.
  if (req.dry_run) return { httpStatus: 200, body: receipt("applied", 0, null, { message: "dry run: nothing written" }) };
  // 4. Write only the checked patch columns, and a new version.
  for (const [col, value] of Object.entries(req.patch)) row[col] = value;
  const newVersion = normalizeTimestamp(new Date().toISOString());
  row[table.versionColumn] = newVersion;
  // 5. Record the key with the write ("commit").
  const body = receipt("applied", 1, null, { new_version: newVersion });
  db.appliedKeys.set(req.idempotency_key, body);
  return { httpStatus: 200, body };
}

function tokenMatches(header, token) {
  // Compare digests: equal lengths for timingSafeEqual, and no early exit on the first byte.
  const digest = (s) => crypto.createHash("sha256").update(s).digest();
  return crypto.timingSafeEqual(digest(header || ""), digest(`Bearer ${token}`));
}

export function handle(config, db, headers, rawBody, nowSecs = Math.floor(Date.now() / 1000)) {
  try {
    if (config.token && !tokenMatches(headers["authorization"], config.token)) {
      throw new Rejection(401, "UNAUTHORIZED");
    }
    const sig = verifySignature(headers["x-synapsor-signature"], rawBody, config.keys, nowSecs, config.skewSecs);
    const req = parseRequest(rawBody, sig.t);
    return checkPolicy(req) || applyInTransaction(db, req);
  } catch (e) {
    if (e instanceof Rejection) return { httpStatus: e.httpStatus, body: receipt("failed", 0, e.code) };
    console.error("handler error:", e && e.message); // log; never send internals to the caller
    return { httpStatus: 500, body: receipt("failed", 0, "HANDLER_ERROR") };
  }
}

// ------------------------------------------------------------------------------ server

function main() {
  const env = process.env;
  let config;
  let db;
  try {
    config = { keys: loadKeys(env), token: env.SYNAPSOR_HANDLER_TOKEN || null, skewSecs: Number(env.SYNAPSOR_HANDLER_SKEW_SECS || 300) };
    db = loadDemoData(env.SYNAPSOR_HANDLER_DEMO_DATA);
  } catch (e) {
    console.error(`synapsor handler: ${e.message}`);
    process.exit(2);
  }
  const server = http.createServer((req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url !== PATH) return send(404, receipt("failed", 0, "NOT_FOUND"));
    if (req.method !== "POST") return send(405, receipt("failed", 0, "METHOD_NOT_ALLOWED"));
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        send(413, receipt("failed", 0, "REQUEST_INVALID", { message: "body larger than 1 MiB" }));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return;
      const out = handle(config, db, req.headers, Buffer.concat(chunks));
      console.error(`${out.body.status}${out.body.error_code ? " " + out.body.error_code : ""} (${out.httpStatus})`);
      send(out.httpStatus, out.body);
    });
  });
  server.listen(Number(env.PORT ?? 8080), env.HOST || "127.0.0.1", () => {
    const { address, port } = server.address();
    console.log(`synapsor handler listening on http://${address}:${port}${PATH}`);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
