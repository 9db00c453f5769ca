/** service_start | list | status | logs | stop: long-running processes in a workspace (a dev server, a database). */
import {
  ServiceListResult,
  type ServiceListResult as ServiceList,
  ServiceLogsInput,
  ServiceLogsResult,
  ServiceNameInput,
  ServiceResult,
  type ServiceResult as Service,
  ServiceStartInput
} from "../../contract/workspace/services.js"
import { WorkspaceIdInput } from "../../contract/workspace/lifecycle.js"
import { listServices, logsService, startService, statusService, stopService } from "../../workspace/ops/services.js"
import { hints, operation } from "../operation.js"
import { publishOptions, secretEnvOptions, workspaceIdArg } from "./args.js"

const serviceNameArg = { field: "service_name", name: "NAME" } as const

const readinessText = (r: Service["readiness"]) =>
  r === null
    ? "none"
    : `${r.type}:${JSON.stringify(r.type === "file" ? r.path : r.type === "tcp" ? r.address : r.type === "http" ? r.url : r.command)}`

/** `[prefix] key=value ...`, the one-line summary human mode prints on stderr. */
const summary = (prefix: string, r: Service) =>
  `[${prefix}] workspace_id=${r.workspace_id} service_name=${r.service_name} state=${r.state} pid=${r.pid ?? "none"} ` +
  `started_at=${r.started_at} ready_at=${r.ready_at ?? "none"} ended_at=${r.ended_at ?? "none"} ` +
  `exit_code=${r.exit_code ?? "none"} stop_reason=${r.stop_reason ?? "none"} readiness=${readinessText(r.readiness)} ` +
  `published_ports=${publishedText(r.published_ports)} execution_mode=${r.execution_mode}\n`

const publishedText = (ports: Service["published_ports"]) =>
  ports.length === 0 ? "none" : ports.map((p) => `${p.host}:${p.host_port}->${p.guest_port}`).join(",")

const formatList = (r: ServiceList) =>
  r.services.length === 0
    ? "No services.\n"
    : r.services.map((s) =>
      `${s.service_name} [${s.state}] pid=${s.pid ?? "none"} started_at=${s.started_at}` +
      `${s.stop_reason ? ` stop_reason=${s.stop_reason}` : ""}` +
      `${s.published_ports.length > 0 ? ` published_ports=${publishedText(s.published_ports)}` : ""} command=${JSON.stringify(s.command)}\n`
    ).join("") + `Services: ${r.running_count}/${r.count} running\n`

export const serviceStart = operation({
  tool: "service_start",
  sdkMethod: "startService",
  description: "Start a long-running service in a workspace (a dev server, a database) under service_name, and wait " +
    "until its readiness holds: a file exists, a TCP connect succeeds, an HTTP GET answers 2xx/3xx, or a command " +
    "exits 0 (polled in the guest every ready_interval_ms, up to ready_timeout_seconds). A service not ready in time " +
    "is stopped, and the error carries the tails of its logs. It keeps running after this call, across later calls " +
    "and clients, until service_stop, its own exit, or workspace_delete. A running name is refused; a stopped one " +
    "is replaced. Its stdout and stderr are kept in the guest (service_logs), outside /workspace. published_ports " +
    "makes guest TCP ports reachable at 127.0.0.1 on the host while the service runs (the workspace needs " +
    "network_policy egress+published-ports); secret_env gives it workspace secrets as environment variables.",
  input: ServiceStartInput,
  output: ServiceResult,
  annotations: hints("Start a workspace service", false, false, false, true),
  handler: (input) => startService(input),
  cli: {
    path: ["workspace", "service", "start"],
    description: "Start a service in a workspace and wait for its readiness",
    args: [workspaceIdArg, serviceNameArg, { field: "command", name: "COMMAND", variadic: true }],
    choiceOptions: {
      "ready-file": { field: "readiness", description: "Ready once this path exists (under /workspace)", value: (path) => ({ type: "file", path }) },
      "ready-tcp": { field: "readiness", description: "Ready once a TCP connect to HOST:PORT succeeds", value: (address) => ({ type: "tcp", address }) },
      "ready-http": { field: "readiness", description: "Ready once a GET of this http:// URL answers 2xx or 3xx", value: (url) => ({ type: "http", url }) },
      "ready-command": { field: "readiness", description: "Ready once this shell command exits 0", value: (command) => ({ type: "command", command }) }
    },
    repeatedOptions: { secret_env: secretEnvOptions, published_ports: publishOptions },
    human: (r) => ({ stderr: summary("workspace-service-start", r) })
  }
})

export const serviceList = operation({
  tool: "service_list",
  sdkMethod: "listServices",
  description: "List a workspace's services: each one's state (running, stopped, failed), pid, times, readiness and " +
    "stop_reason, with count and running_count.",
  input: WorkspaceIdInput,
  output: ServiceListResult,
  sdkShorthand: "workspace_id",
  annotations: hints("List workspace services", true, false, true),
  handler: listServices,
  cli: {
    path: ["workspace", "service", "list"],
    description: "List a workspace's services",
    args: [workspaceIdArg],
    human: formatList
  }
})

export const serviceStatus = operation({
  tool: "service_status",
  sdkMethod: "statusService",
  description: "One service's record: state (running, stopped, failed), pid, started_at, ready_at, ended_at, exit_code, " +
    "readiness and stop_reason (sigterm or sigkill after service_stop, ready_timeout, exited when it ended by itself).",
  input: ServiceNameInput,
  output: ServiceResult,
  annotations: hints("Workspace service status", true, false, true),
  handler: statusService,
  cli: {
    path: ["workspace", "service", "status"],
    description: "Show one service's state",
    args: [workspaceIdArg, serviceNameArg],
    human: (r) => ({ stderr: summary("workspace-service-status", r) })
  }
})

export const serviceLogs = operation({
  tool: "service_logs",
  sdkMethod: "logsService",
  description: "A service's stdout and stderr, kept in the guest since it started: the last tail_lines lines of each " +
    "(default 200), or everything with all. Long logs are cut to the output budget in their middle (a marker says so).",
  input: ServiceLogsInput,
  output: ServiceLogsResult,
  carriesOutput: true,
  annotations: hints("Read workspace service logs", true, false, true),
  handler: logsService,
  cli: {
    path: ["workspace", "service", "logs"],
    description: "Print a service's stdout and stderr (the last 200 lines of each unless --tail-lines or --all)",
    args: [workspaceIdArg, serviceNameArg],
    human: (r) => ({
      stdout: r.stdout,
      stderr: r.stderr +
        `[workspace-service-logs] workspace_id=${r.workspace_id} service_name=${r.service_name} ` +
        `tail_lines=${r.tail_lines ?? "all"}\n`
    })
  }
})

export const serviceStop = operation({
  tool: "service_stop",
  sdkMethod: "stopService",
  description: "Stop a service: SIGTERM to its whole process group, then SIGKILL to everything it started after 5 s. " +
    "Returns its record (state stopped, stop_reason sigterm or sigkill). Stopping a service that already ended " +
    "changes nothing.",
  input: ServiceNameInput,
  output: ServiceResult,
  annotations: hints("Stop a workspace service", false, true, true),
  handler: stopService,
  cli: {
    path: ["workspace", "service", "stop"],
    description: "Stop a service (SIGTERM, then SIGKILL after 5 s)",
    args: [workspaceIdArg, serviceNameArg],
    human: (r) => ({ stderr: summary("workspace-service-stop", r) })
  }
})
