#!/usr/bin/env bash
#
# The whole Kubernetes flow on a local cluster, from nothing to a written row:
#
#   examples/billing-on-kubernetes/run.sh          set up and run the flow (prints a JSON summary)
#   examples/billing-on-kubernetes/run.sh propose TOOL '{"arg": ...}' [USER]
#                                                  one more MCP tool call as USER (default
#                                                  dana@acme; prints its envelope)
#   examples/billing-on-kubernetes/run.sh approve NAME
#                                                  alice approves proposal NAME
#   examples/billing-on-kubernetes/run.sh down     remove what it installed (the cluster stays)
#
# 1. a real single-node cluster (scripts/cluster.sh; reused when it runs) with the images
#    imported: the runner and controller (scripts/images.sh), and the example's PostgreSQL and
#    handler app (built here);
# 2. PostgreSQL as a pod, seeded with invoices and support tickets, a read-only role for the
#    sidecar and a writer for the controller;
# 3. the chart, with sidecar injection, the receipts table created by its install hook, and
#    alice allowed to approve in namespace billing;
# 4. the billing app (the axum handler template) as a Deployment annotated
#    runner.synapsor.ai/inject: "true": it gets the synapsor-runner sidecar, which serves every
#    tenant of the app: each MCP session runs as the user whose token the app minted;
# 5. the app mints a short-lived token for its user dana@acme; an MCP client sends it to the
#    sidecar through kubectl port-forward and proposes waiving a late fee; alice approves with
#    `kubectl annotate`; the controller pod applies it (guarded SQL);
# 6. the same for a support ticket's priority, applied by the app's own handler through a signed
#    call from the controller pod;
# 7. it shows the receipts in status, the Events and the changed row.
#
# Human-readable steps go to stderr; stdout gets one JSON summary. Needs root (the cluster) and
# what scripts/cluster.sh and scripts/images.sh need. With SYNAPSOR_CLUSTER_KUBECONFIG set it
# uses that cluster and imports the images into SYNAPSOR_CLUSTER_CTR_SOCKET.
# SYNAPSOR_EXAMPLE_HELM_ARGS adds arguments to its `helm upgrade --install`.
set -Eeuo pipefail
trap 'echo "error: run.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=scripts/lib/common.sh
. "$REPO_ROOT/scripts/lib/common.sh"

APP_NS=billing
SYS_NS=synapsor-system
RELEASE=synapsor
IMAGES=$REPO_ROOT/target/images
HANDLER_IMAGE=localhost/synapsor-example/billing-app:0.1.0
PG_IMAGE=localhost/synapsor-example/postgres:15
STATE=$REPO_ROOT/target/example-billing
SECONDS_WAIT=${SYNAPSOR_EXAMPLE_WAIT_SECS:-180}

step() { printf '\n==> %s\n' "$*" >&2; }

cluster_env() {
    if [ -z "${SYNAPSOR_CLUSTER_KUBECONFIG:-}" ]; then
        step "starting (or reusing) the local cluster: scripts/cluster.sh start"
        eval "$(bash "$REPO_ROOT/scripts/cluster.sh" start)"
    fi
    export KUBECONFIG=$SYNAPSOR_CLUSTER_KUBECONFIG
    KUBECTL=${SYNAPSOR_KUBECTL:-kubectl}
    HELM=${SYNAPSOR_HELM:-helm}
}

k() { "$KUBECTL" "$@"; }

# A random password of 32 hex characters.
secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

# wait_for WHAT SECS COMMAND...: run COMMAND until it succeeds.
wait_for() {
    local what=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "$what: not within ${secs}s"
}

build_images() {
    if [ ! -f "$IMAGES/synapsor-runner.tar" ] || [ ! -f "$IMAGES/synapsor-controller.tar" ]; then
        step "building the runner and controller images (scripts/images.sh build)"
        bash "$REPO_ROOT/scripts/images.sh" build
    fi
    mkdir -p "$IMAGES"
    if [ ! -f "$IMAGES/synapsor-example-postgres.tar" ]; then
        step "building the example's PostgreSQL image from this machine's postgresql-15"
        bash "$HERE/postgres-image.sh" "$IMAGES/synapsor-example-postgres.tar" >/dev/null
    fi
    # The app's image follows its binary: rebuilt when cargo rebuilt the app.
    local app_bin="$REPO_ROOT/target/release/synapsor-example-handler"
    if [ ! -f "$IMAGES/synapsor-example-billing-app.tar" ] || [ ! -f "$app_bin" ] \
        || ! (cd "$REPO_ROOT" && cargo build --release --locked -q -p synapsor-example-handler) \
        || [ "$app_bin" -nt "$IMAGES/synapsor-example-billing-app.tar" ]; then
        step "building the billing app image (the axum handler template and its agent tokens)"
        (cd "$REPO_ROOT" && cargo build --release --locked -p synapsor-example-handler)
        local rootfs="$IMAGES/synapsor-example-billing-app.rootfs"
        bash "$REPO_ROOT/scripts/lib/image-rootfs.sh" "$REPO_ROOT/target/release/synapsor-example-handler" "$rootfs"
        python3 "$REPO_ROOT/scripts/lib/docker_archive.py" --rootfs "$rootfs" --ref "$HANDLER_IMAGE" \
            --out "$IMAGES/synapsor-example-billing-app.tar" --entrypoint /usr/local/bin/synapsor-example-handler \
            --user 65532:65532 --label org.opencontainers.image.title=synapsor-example-billing-app >/dev/null
        rm -rf "$rootfs"
    fi
    step "importing the images into the cluster's containerd"
    local t
    for t in synapsor-runner synapsor-controller synapsor-example-postgres synapsor-example-billing-app; do
        ctr -a "$SYNAPSOR_CLUSTER_CTR_SOCKET" -n k8s.io images import "$IMAGES/$t.tar" >/dev/null
    done
}

# The secrets of one run, kept so that a second run reuses the database's passwords.
load_or_make_secrets() {
    mkdir -p "$STATE"
    chmod 700 "$STATE"
    if [ ! -f "$STATE/secrets.env" ]; then
        {
            echo "PG_ADMIN_PW=$(secret)"
            echo "PG_READER_PW=$(secret)"
            echo "PG_WRITER_PW=$(secret)"
            echo "HANDLER_SECRET=$(secret)$(secret)"
            echo "HANDLER_TOKEN=$(secret)"
        } >"$STATE/secrets.env"
    fi
    # The secret the app signs its users' agent tokens with, and the sidecar checks them with.
    grep -q '^AGENT_TOKEN_SECRET=' "$STATE/secrets.env" || echo "AGENT_TOKEN_SECRET=$(secret)$(secret)" >>"$STATE/secrets.env"
    # shellcheck disable=SC1091
    . "$STATE/secrets.env"
}

namespaces() {
    local ns
    for ns in "$APP_NS" "$SYS_NS"; do
        k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
        # Kubernetes 1.20 does not set this label; the chart's webhooks select namespaces by it.
        k label namespace "$ns" "kubernetes.io/metadata.name=$ns" --overwrite >/dev/null
    done
}

database() {
    step "PostgreSQL as a pod in namespace $APP_NS"
    k -n "$APP_NS" create secret generic billing-db --from-literal=POSTGRES_PASSWORD="$PG_ADMIN_PW" \
        --dry-run=client -o yaml | k apply -f - >/dev/null
    k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: billing-db, namespace: $APP_NS}
spec:
  selector: {app: billing-db}
  ports: [{port: 5432, targetPort: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: billing-db, namespace: $APP_NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: billing-db}}
  strategy: {type: Recreate}
  template:
    metadata: {labels: {app: billing-db}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999}
      containers:
        - name: postgres
          image: $PG_IMAGE
          imagePullPolicy: Never
          env:
            - name: POSTGRES_PASSWORD
              valueFrom: {secretKeyRef: {name: billing-db, key: POSTGRES_PASSWORD}}
          ports: [{containerPort: 5432}]
          readinessProbe:
            exec: {command: [pg_isready, -h, 127.0.0.1]}
            periodSeconds: 2
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}, {name: tmp, mountPath: /tmp}]
      volumes: [{name: data, emptyDir: {}}, {name: tmp, emptyDir: {}}]
YAML
    k -n "$APP_NS" rollout status deploy/billing-db --timeout="${SECONDS_WAIT}s" >&2
    # The image has no env(1): the password goes in the connection URI.
    local admin="postgresql://postgres:$PG_ADMIN_PW@127.0.0.1"
    if ! k -n "$APP_NS" exec deploy/billing-db -- psql "$admin/postgres" -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'billing'" 2>/dev/null | grep -q 1; then
        step "seeding database billing (invoices, support tickets, reader and writer roles)"
        k -n "$APP_NS" exec deploy/billing-db -- psql "$admin/postgres" -qc "CREATE DATABASE billing" >/dev/null
        cat "$HERE/../billing-postgres/seed.sql" "$HERE/../app-handler/seed.sql" "$HERE/roles.sql" |
            k -n "$APP_NS" exec -i deploy/billing-db -- psql "$admin/billing" -q -v ON_ERROR_STOP=1 \
                -v reader_pw="$PG_READER_PW" -v writer_pw="$PG_WRITER_PW" >/dev/null
    fi
    DB_IP=$(k -n "$APP_NS" get svc billing-db -o jsonpath='{.spec.clusterIP}')
}

app_service() {
    # The app's Service first: the controller calls the app's handler at its address (there is
    # no cluster DNS on this local cluster; on a real one use billing-app.billing.svc).
    k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: billing-app, namespace: $APP_NS}
spec:
  selector: {app: billing-app}
  ports: [{name: handler, port: 8080, targetPort: 8080}]
YAML
    APP_IP=$(k -n "$APP_NS" get svc billing-app -o jsonpath='{.spec.clusterIP}')
}

chart() {
    step "the chart in namespace $SYS_NS: controller, webhooks, injection, receipts table"
    local read_url="postgres://billing_reader:$PG_READER_PW@$DB_IP:5432/billing"
    local write_url="postgres://billing_writer:$PG_WRITER_PW@$DB_IP:5432/billing"
    local admin_url="postgres://postgres:$PG_ADMIN_PW@$DB_IP:5432/billing"
    k -n "$SYS_NS" create secret generic billing-writer \
        --from-literal=BILLING_DATABASE_WRITE_URL="$write_url" \
        --from-literal=SUPPORT_HANDLER_URL="http://$APP_IP:8080/synapsor/apply" \
        --from-literal=SUPPORT_HANDLER_TOKEN="$HANDLER_TOKEN" \
        --from-literal=SUPPORT_HANDLER_SIGNING_SECRET="$HANDLER_SECRET" \
        --dry-run=client -o yaml | k apply -f - >/dev/null
    k -n "$SYS_NS" create secret generic billing-admin --from-literal=BILLING_DATABASE_ADMIN_URL="$admin_url" \
        --dry-run=client -o yaml | k apply -f - >/dev/null
    # No tenant here: each MCP session's tenant and user come from the token the app minted,
    # checked with the shared secret (the config's identity section).
    k -n "$APP_NS" create secret generic billing-agent-env \
        --from-literal=BILLING_DATABASE_READ_URL="$read_url" \
        --from-literal=SUPPORT_DATABASE_READ_URL="$read_url" \
        --from-literal=BILLING_AGENT_TOKEN_SECRET="$AGENT_TOKEN_SECRET" \
        --dry-run=client -o yaml | k apply -f - >/dev/null
    # Helm installs a chart's CRD once and never upgrades it: apply the current one first.
    k apply -f "$REPO_ROOT/charts/synapsor-runner/crds/" >/dev/null
    "$HELM" upgrade --install "$RELEASE" "$REPO_ROOT/charts/synapsor-runner" --namespace "$SYS_NS" \
        --set-file runnerConfig.json="$HERE/synapsor.runner.json" \
        --set image.pullPolicy=Never \
        --set "sidecar.namespaces={$APP_NS}" \
        --set "sidecar.serviceAccounts={billing-app}" \
        --set sidecar.injection.enabled=true \
        --set sidecar.injection.envSecret=billing-agent-env \
        --set "controller.envFrom[0].secretRef.name=billing-writer" \
        --set receipts.init.enabled=true \
        --set receipts.init.adminSecret=billing-admin \
        --set receipts.init.adminUrlEnv=BILLING_DATABASE_ADMIN_URL \
        --set receipts.init.source=billing \
        --set "approvers.users={alice}" \
        --set "approvers.namespaces={$APP_NS}" \
        ${SYNAPSOR_EXAMPLE_HELM_ARGS:-} \
        --wait --timeout "${SECONDS_WAIT}s" >&2
}

app() {
    step "the billing app, annotated runner.synapsor.ai/inject: \"true\""
    k -n "$APP_NS" create configmap billing-app-data --from-file=demo.json="$HERE/handler-demo-data.json" \
        --dry-run=client -o yaml | k apply -f - >/dev/null
    k -n "$APP_NS" create secret generic billing-app-handler \
        --from-literal=SYNAPSOR_HANDLER_SIGNING_SECRET="$HANDLER_SECRET" \
        --from-literal=SYNAPSOR_HANDLER_TOKEN="$HANDLER_TOKEN" \
        --from-literal=BILLING_AGENT_TOKEN_SECRET="$AGENT_TOKEN_SECRET" \
        --dry-run=client -o yaml | k apply -f - >/dev/null
    k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: billing-app, namespace: $APP_NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: billing-app, namespace: $APP_NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: billing-app}}
  template:
    metadata:
      labels: {app: billing-app}
      annotations: {runner.synapsor.ai/inject: "true"}
    spec:
      serviceAccountName: billing-app
      securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
      containers:
        - name: app
          image: $HANDLER_IMAGE
          imagePullPolicy: Never
          env:
            - {name: HOST, value: 0.0.0.0}
            - {name: PORT, value: "8080"}
            - {name: SYNAPSOR_HANDLER_KEY_ID, value: support-2025-01}
            - {name: SYNAPSOR_HANDLER_DEMO_DATA, value: /data/demo.json}
            # The app's users and their tenants: it mints their agents' tokens (127.0.0.1:8081).
            - {name: AGENT_USERS, value: "dana@acme=acme,li@globex=globex"}
          envFrom: [{secretRef: {name: billing-app-handler}}]
          ports: [{name: handler, containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, configMap: {name: billing-app-data}}]
YAML
    k -n "$APP_NS" rollout status deploy/billing-app --timeout="${SECONDS_WAIT}s" >&2
    find_app_pod
    local containers
    containers=$(k -n "$APP_NS" get pod "$APP_POD" -o jsonpath='{.spec.containers[*].name}')
    [[ " $containers " == *" synapsor-runner "* ]] || die "the app pod has no injected sidecar (containers: $containers)"
}

# The running billing app pod (after a rollout: the ready one).
find_app_pod() {
    APP_POD=$(k -n "$APP_NS" get pods -l app=billing-app -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    statuses = p.get("status", {}).get("containerStatuses") or []
    if "deletionTimestamp" not in p["metadata"] and statuses and all(c["ready"] for c in statuses):
        print(p["metadata"]["name"])
        break
')
    [ -n "$APP_POD" ] || die "no ready billing-app pod in namespace $APP_NS"
}

# port_forward PORT_IN_POD: forwards a free local port to the app pod; sets PF_PORT and PF_PID.
port_forward() {
    PF_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    k -n "$APP_NS" port-forward "pod/$APP_POD" "$PF_PORT:$1" >"$STATE/port-forward.log" 2>&1 &
    PF_PID=$!
    wait_for "port-forward to the app pod's port $1" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PF_PORT"
}

port_forward_stop() {
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
}

# agent_token USER: the short-lived token the app mints for USER's agent (the app's
# POST /agent/session, on the pod's loopback).
agent_token() {
    port_forward 8081
    python3 - "$PF_PORT" "$1" <<'PY'
import json, sys, urllib.request
port, user = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"http://127.0.0.1:{port}/agent/session", data=json.dumps({"user": user}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, timeout=30) as r:
    print(json.load(r)["token"])
PY
    port_forward_stop
}

# mcp_call TOOL ARGS_JSON [USER]: one tools/call as USER (default dana@acme), with the token the
# app minted for them, through a port-forward to the sidecar; prints the v2 envelope.
mcp_call() {
    local tool=$1 args=$2 user=${3:-dana@acme} token
    token=$(agent_token "$user")
    port_forward 8766
    python3 - "$PF_PORT" "$token" "$tool" "$args" <<'PY'
import json, sys, urllib.request
port, token, tool, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
url = f"http://127.0.0.1:{port}/mcp"
session = None
def post(msg):
    global session
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "Authorization": f"Bearer {token}", "Host": f"127.0.0.1:{port}"}
    if session:
        headers["Mcp-Session-Id"] = session
    req = urllib.request.Request(url, data=json.dumps(msg).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        session = r.headers.get("Mcp-Session-Id") or session
        body = r.read().decode()
    for line in body.splitlines():
        if line.startswith("data:") and line[5:].strip():
            return json.loads(line[5:])
    return json.loads(body) if body.strip() else None
post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
      "capabilities": {}, "clientInfo": {"name": "billing-on-kubernetes", "version": "1"}}})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})
res = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}})
print(json.dumps(res["result"].get("structuredContent") or json.loads(res["result"]["content"][0]["text"])))
PY
    port_forward_stop
}

# approve_and_wait ENVELOPE: alice approves the proposal in the envelope; waits for a final phase.
approve_and_wait() {
    local envelope=$1 id name phase
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["proposal"]["id"])' "$envelope")
    name=$(echo "$id" | tr '_' '-')
    wait_for "Proposal $name" 30 k -n "$APP_NS" get "proposal/$name"
    step "alice approves: kubectl annotate proposal/$name runner.synapsor.ai/approve=true"
    k -n "$APP_NS" --as alice annotate "proposal/$name" runner.synapsor.ai/approve=true >&2
    for ((i = 0; i < SECONDS_WAIT * 2; i++)); do
        phase=$(k -n "$APP_NS" get "proposal/$name" -o jsonpath='{.status.phase}')
        case "$phase" in Applied | Conflict | Failed | Rejected | Expired) break ;; esac
        sleep 0.5
    done
    echo "$name"
}

cmd_up() {
    command -v python3 >/dev/null 2>&1 || die "python3 is needed"
    cluster_env
    build_images
    load_or_make_secrets
    namespaces
    database
    app_service
    chart
    app

    step "dana@acme's agent, with the token the app minted for her, proposes waiving the late fee of inv_acme_1001 (MCP through the sidecar)"
    local fee_env fee_name ticket_env ticket_name
    fee_env=$(mcp_call billing.propose_late_fee_waiver '{"invoice_id": "inv_acme_1001", "reason": "Customer disputed the March shipment"}')
    echo "$fee_env" | python3 -m json.tool >&2
    fee_name=$(approve_and_wait "$fee_env")

    step "the agent proposes raising the priority of tkt_acme_301 (applied by the app's handler)"
    ticket_env=$(mcp_call support.propose_ticket_priority '{"ticket_id": "tkt_acme_301", "priority": "urgent"}')
    ticket_name=$(approve_and_wait "$ticket_env")

    step "what happened"
    k -n "$APP_NS" get proposals >&2
    k -n "$APP_NS" get events --field-selector "involvedObject.kind=Proposal" >&2
    local row
    row=$(k -n "$APP_NS" exec deploy/billing-db -- psql "postgresql://postgres:$PG_ADMIN_PW@127.0.0.1/billing" -tAc "SELECT row_to_json(i) FROM (SELECT id, late_fee_cents, updated_at FROM invoices WHERE id = 'inv_acme_1001') i")
    echo "invoice inv_acme_1001 now: $row" >&2
    python3 - "$APP_NS" "$fee_name" "$ticket_name" "$row" "$KUBECTL" <<'PY'
import json, subprocess, sys
ns, fee, ticket, row, kubectl = sys.argv[1:6]
def proposal(name):
    return json.loads(subprocess.check_output([kubectl, "-n", ns, "get", "proposal/" + name, "-o", "json"]))
def events(name):
    out = json.loads(subprocess.check_output([kubectl, "-n", ns, "get", "events", "-o", "json",
                                              "--field-selector", f"involvedObject.name={name}"]))
    return [{"type": e.get("type"), "reason": e.get("reason"), "note": e.get("note") or e.get("message")} for e in out["items"]]
summary = {}
for key, name in (("late_fee", fee), ("ticket_priority", ticket)):
    p = proposal(name)
    st = p.get("status", {})
    summary[key] = {"proposal": name, "phase": st.get("phase"), "approvals": st.get("approvals"),
                    "receipt": st.get("receipt"), "events": events(name)}
summary["invoice"] = json.loads(row) if row.strip() else None
print(json.dumps(summary))
PY
}

cmd_down() {
    cluster_env
    step "removing the example (the cluster keeps running; scripts/cluster.sh stop stops it)"
    "$HELM" uninstall "$RELEASE" --namespace "$SYS_NS" --wait >&2 || true
    k delete namespace "$APP_NS" "$SYS_NS" --ignore-not-found --wait=true >&2 || true
    rm -rf "$STATE"
}

case "${1:-up}" in
up) cmd_up ;;
propose)
    [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: run.sh propose TOOL ARGS_JSON [USER]"
    cluster_env
    load_or_make_secrets
    find_app_pod
    mcp_call "$2" "$3" "${4:-dana@acme}"
    ;;
approve)
    [ $# -eq 2 ] || die "usage: run.sh approve NAME"
    cluster_env
    k -n "$APP_NS" --as alice annotate "proposal/$2" runner.synapsor.ai/approve=true >&2
    ;;
down) cmd_down ;;
*)
    sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
