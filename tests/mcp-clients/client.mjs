#!/usr/bin/env node
// Drives an MCP server with the official TypeScript SDK client and prints one JSON document.
//
// Used by sidecar/tests/mcp_ts_client.rs, which compares what this client saw against a real
// PostgreSQL database. Usable by hand too:
//
//   node client.mjs '{"transport":"stdio","command":"synapsor-runner","args":["mcp","serve"],
//                     "calls":[{"op":"list_tools"}]}'
//   echo '{"transport":"http","url":"http://127.0.0.1:8766/mcp","token":"...","calls":[...]}' | node client.mjs
//
// Plan (JSON, as argv[2] or on stdin):
//   transport   "stdio" | "http"
//   stdio:      command, args, env (added to the SDK's safe default environment), cwd
//   http:       url, token (sent as `Authorization: Bearer <token>`), terminate_session
//   calls       [{op: "list_tools" | "call_tool" | "read_resource" | "list_resource_templates" | "ping",
//                 name, arguments, uri}]
//               Any string may hold `{{N.path.to.value}}`, replaced by that value of the result
//               of call N (0-based), e.g. "synapsor://proposals/{{1.structuredContent.proposal.id}}".
//
// Output: {server, protocol_version, capabilities, instructions, results: [{op, ok, result | error}]}
// or {connect_error: {...}} when initialize fails (e.g. HTTP 401). Exit 0 whenever a document was
// printed; 2 for an unusable plan.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

async function readPlan() {
  const arg = process.argv[2];
  if (arg && arg !== "-") return JSON.parse(arg);
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function makeTransport(plan) {
  switch (plan.transport) {
    case "stdio":
      return new StdioClientTransport({
        command: plan.command,
        args: plan.args ?? [],
        env: plan.env,
        cwd: plan.cwd,
        // The server logs to stderr; let it through to the test's output.
        stderr: "inherit",
      });
    case "http": {
      const headers = {};
      if (plan.token !== undefined && plan.token !== null) headers.Authorization = `Bearer ${plan.token}`;
      return new StreamableHTTPClientTransport(new URL(plan.url), { requestInit: { headers } });
    }
    default:
      throw new Error(`unknown transport ${JSON.stringify(plan.transport)}`);
  }
}

// Errors as plain JSON: McpError has a JSON-RPC `code` and `data`; StreamableHTTPError has the
// HTTP status as `code`.
function errorJson(e) {
  return {
    name: e?.name ?? typeof e,
    code: e?.code ?? null,
    message: String(e?.message ?? e),
    data: e?.data ?? null,
  };
}

function lookup(results, ref) {
  const [index, ...path] = ref.split(".");
  let v = results[Number(index)]?.result;
  for (const key of path) v = v?.[key];
  if (v === undefined) throw new Error(`{{${ref}}} does not resolve`);
  return v;
}

function substitute(value, results) {
  if (typeof value === "string") {
    return value.replace(/\{\{([^}]+)\}\}/g, (_, ref) => String(lookup(results, ref.trim())));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, results));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, results)]));
  }
  return value;
}

async function runCall(client, call) {
  switch (call.op) {
    case "list_tools":
      return (await client.listTools()).tools;
    case "call_tool":
      return await client.callTool({ name: call.name, arguments: call.arguments ?? {} });
    case "read_resource":
      return await client.readResource({ uri: call.uri });
    case "list_resource_templates":
      return (await client.listResourceTemplates()).resourceTemplates;
    case "ping":
      return await client.ping();
    default:
      throw new Error(`unknown op ${JSON.stringify(call.op)}`);
  }
}

async function main() {
  let plan;
  try {
    plan = await readPlan();
  } catch (e) {
    console.error(`client.mjs: the plan is not JSON: ${e.message}`);
    process.exit(2);
  }
  let transport;
  try {
    transport = makeTransport(plan);
  } catch (e) {
    console.error(`client.mjs: ${e.message}`);
    process.exit(2);
  }
  const client = new Client({ name: "synapsor-ts-sdk-test", version: "0.0.0" });
  try {
    await client.connect(transport);
  } catch (e) {
    await client.close().catch(() => {});
    console.log(JSON.stringify({ connect_error: errorJson(e) }));
    return;
  }
  const out = {
    server: client.getServerVersion() ?? null,
    protocol_version: transport.protocolVersion ?? null,
    capabilities: client.getServerCapabilities() ?? null,
    instructions: client.getInstructions() ?? null,
    results: [],
  };
  for (const raw of plan.calls ?? []) {
    let call;
    try {
      call = substitute(raw, out.results);
      out.results.push({ op: call.op, ok: true, result: await runCall(client, call) });
    } catch (e) {
      out.results.push({ op: (call ?? raw).op, ok: false, error: errorJson(e) });
    }
  }
  if (plan.transport === "http" && plan.terminate_session) {
    await transport.terminateSession().catch(() => {});
  }
  await client.close();
  console.log(JSON.stringify(out));
}

await main();
