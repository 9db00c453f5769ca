/**
 * service_start | list | status | logs | stop, over the agent's service tool
 * (../guestServices.ts). A service runs under a supervisor in the guest,
 * outside every exec's cgroup, so it keeps running when the client that
 * started it leaves; its state and logs live in the guest's
 * /run/pyro-services (a tmpfs), and it ends with the VM.
 */
import * as Effect from "effect/Effect"
import { InvalidInput, WorkspaceServiceError } from "../../contract/errors.js"
import type { Command } from "../../contract/common.js"
import {
  DEFAULT_SERVICE_LOG_TAIL_LINES,
  type Readiness,
  SERVICE_COMMAND_MAX_BYTES,
  type ServiceLogsInput,
  type ServiceNameInput,
  type ServiceRecord,
  PUBLISHED_PORT_HOST,
  type PublishedPort,
  type ServiceStartInput
} from "../../contract/workspace/services.js"
import { iso } from "../../machine/record.js"
import { PyroConfig } from "../../services/PyroConfig.js"
import { WorkspaceManager, type WorkspaceGuest } from "../../services/WorkspaceManager.js"
import { resultBudget } from "../../vm/execCommand.js"
import { guestCommandEnv, networkOfRecord } from "../../vm/network/policy.js"
import { evenBudget, type OutputBudget, shapeCaptured } from "../../vm/output.js"
import type { GuestConnection } from "../../vm/protocol/mux.js"
import type { WorkspaceRecord } from "../store.js"
import {
  type GuestReadinessType,
  type GuestService,
  guestServiceLogs,
  guestServiceStatus,
  listGuestServices,
  startGuestService,
  stopGuestService
} from "../guestServices.js"
import { bindForwarder } from "../ports/spawn.js"
import { publishedPorts, stopForwarder, writeForwarder } from "../ports/registry.js"
import { makeRedactor, type Redactor } from "../secrets/redact.js"
import { readSecrets, redactorFor, secretEnvEntries } from "../secrets/store.js"

/** How long service_stop gives SIGTERM before SIGKILL. */
export const SERVICE_STOP_TIMEOUT_MS = 5000
/** Lines of each log a readiness failure carries, and the bytes they may take. */
const FAILURE_TAIL_LINES = 20
const FAILURE_TAIL_BUDGET: OutputBudget = evenBudget(8 * 1024)

/** A word the shell reads back as itself. */
const shellQuote = (word: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)

/**
 * The command line the guest's shell runs: a string as it is; an argv quoted
 * word by word, except one word alone, which is a command line itself (what
 * `pyro workspace service start ID NAME -- 'a && b'` means).
 */
export const serviceCommandLine = (command: Command) =>
  typeof command === "string" ? command : command.length === 1 ? command[0] : command.map(shellQuote).join(" ")

const readinessTarget = (r: Readiness): { readonly type: GuestReadinessType; readonly target: string } =>
  r.type === "file"
    ? { type: "file", target: r.path }
    : r.type === "tcp"
    ? { type: "tcp", target: r.address }
    : r.type === "http"
    ? { type: "http", target: r.url }
    : { type: "command", target: r.command }

const readinessOf = (s: GuestService): ServiceRecord["readiness"] => {
  switch (s.readyType) {
    case "file":
      return { type: "file", path: s.readyTarget }
    case "tcp":
      return { type: "tcp", address: s.readyTarget }
    case "http":
      return { type: "http", url: s.readyTarget }
    case "command":
      return { type: "command", command: s.readyTarget }
    case null:
      return null
  }
}

const recordOf = (s: GuestService, published: ReadonlyArray<PublishedPort> = []): ServiceRecord => ({
  service_name: s.name,
  command: s.command,
  cwd: s.cwd,
  state: s.state,
  started_at: iso(s.startedAt),
  ready_at: s.readyAt === null ? null : iso(s.readyAt),
  ended_at: s.endedAt === null ? null : iso(s.endedAt),
  exit_code: s.exitCode,
  pid: s.pid,
  readiness: readinessOf(s),
  stop_reason: s.stopReason,
  published_ports: s.state === "running" ? published : []
})

const resultOf = (record: WorkspaceRecord, s: GuestService, published: ReadonlyArray<PublishedPort> = []) => ({
  workspace_id: record.id,
  execution_mode: record.execution_mode,
  ...recordOf(s, published)
})

/**
 * Bind the ports a service asks to publish, before it starts: only in a
 * workspace whose network_policy allows it, never over the ports of a service
 * of that name still running.
 */
const bindPorts = (guest: WorkspaceGuest, input: ServiceStartInput) =>
  Effect.gen(function*() {
    const { connection, paths, record } = guest
    const ports = input.published_ports ?? []
    if (ports.length === 0) return undefined
    const policy = networkOfRecord(record).policy
    if (policy !== "egress+published-ports") {
      return yield* new InvalidInput({
        detail: `published_ports: the workspace's network_policy is ${policy}; publishing ports needs egress+published-ports`
      })
    }
    const current = yield* Effect.either(guestServiceStatus(connection, record.id, input.service_name))
    if (current._tag === "Right" && current.right.state === "running") {
      return yield* new WorkspaceServiceError({
        workspaceId: record.id,
        serviceName: input.service_name,
        problem: "already_running",
        detail: "a service of that name is running; stop it first (service_stop)"
      })
    }
    stopForwarder(paths.dir, input.service_name) // a former run's, if it still lingers
    const config = yield* PyroConfig
    const spec = {
      workspaceId: record.id,
      serviceName: input.service_name,
      ports: ports.map((p) => ({ guest_port: p.guest_port, host_port: p.host_port ?? 0 }))
    }
    return yield* bindForwarder(paths.dir, spec, { PYRO_STATE_DIR: config.stateDir, PYRO_CACHE_DIR: config.cacheDir }).pipe(
      Effect.mapError((why) =>
        new WorkspaceServiceError({
          workspaceId: record.id,
          serviceName: input.service_name,
          problem: "not_started",
          detail: `cannot publish its ports: ${why}`
        })
      )
    )
  })

/** The last lines of each log, shaped small, for an error. */
const failureTails = (connection: GuestConnection, workspaceId: string, name: string, redactor: Redactor) =>
  guestServiceLogs(connection, workspaceId, name, FAILURE_TAIL_LINES, 64 * 1024, redactor).pipe(
    Effect.map(({ stderr, stdout }) => ({
      stdoutTail: shapeCaptured("stdout", stdout, FAILURE_TAIL_BUDGET).text,
      stderrTail: shapeCaptured("stderr", stderr, FAILURE_TAIL_BUDGET).text
    })),
    // The failure is the news; logs that cannot be read do not replace it.
    Effect.orElseSucceed(() => ({}))
  )

export const startService = (input: ServiceStartInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, (guest) =>
      Effect.gen(function*() {
        const { connection, paths, record } = guest
        const secrets = yield* readSecrets(paths.dir)
        const secretEnv = yield* secretEnvEntries(secrets, input.secret_env)
        const command = serviceCommandLine(input.command)
        if (Buffer.byteLength(command) > SERVICE_COMMAND_MAX_BYTES || command.includes("\0")) {
          return yield* new InvalidInput({ detail: `command: must be at most ${SERVICE_COMMAND_MAX_BYTES} bytes of UTF-8, without NUL` })
        }
        const readiness = input.readiness ? readinessTarget(input.readiness) : undefined
        const forwarder = yield* bindPorts(guest, input)
        const started = yield* startGuestService(connection, record.id, {
          name: input.service_name,
          command,
          cwd: input.cwd,
          env: [...guestCommandEnv(networkOfRecord(record)), ...secretEnv],
          ...(readiness
            ? { readiness: { ...readiness, timeoutMs: input.ready_timeout_seconds * 1000, intervalMs: input.ready_interval_ms } }
            : {})
        }).pipe(Effect.onExit((exit) =>
          forwarder && (exit._tag === "Failure" || exit.value._tag !== "Running") ? forwarder.cancel : Effect.void
        ))
        if (started._tag === "Running") {
          if (!forwarder) return resultOf(record, started.service)
          writeForwarder(paths.dir, input.service_name, forwarder.who, forwarder.ports)
          yield* forwarder.go
          return resultOf(record, started.service, forwarder.ports.map((p) => ({ ...p, host: PUBLISHED_PORT_HOST })))
        }
        const s = started.service
        const what = readiness ? `${readiness.type} ${readiness.target}` : ""
        return yield* new WorkspaceServiceError({
          workspaceId: record.id,
          serviceName: s.name,
          problem: started._tag === "Exited" ? "exited" : "not_ready",
          detail: started._tag === "Exited"
            ? `it exited (exit code ${s.exitCode ?? "unknown"}) before it was ready (${what})`
            : `not ready (${what}) within ${input.ready_timeout_seconds}s: it was stopped ` +
              `(state ${s.state}, stop_reason ${s.stopReason ?? "none"})`,
          ...(yield* failureTails(connection, record.id, s.name, makeRedactor(secrets.map((x) => x.value))))
        })
      }), { activity: true }))

/** Every service of a workspace, in start order (service_list, workspace_summary). */
export const serviceListing = ({ connection, paths, record }: WorkspaceGuest) =>
  Effect.map(listGuestServices(connection, record.id), (services) => {
    const sorted = [...services].sort((a, b) => a.startedAt - b.startedAt || a.name.localeCompare(b.name))
    return {
      workspace_id: record.id,
      execution_mode: record.execution_mode,
      count: sorted.length,
      running_count: sorted.filter((s) => s.state === "running").length,
      services: sorted.map((s) => recordOf(s, publishedPorts(paths.dir, s.name)))
    }
  })

export const listServices = (input: { readonly workspace_id: string }) =>
  Effect.flatMap(WorkspaceManager, (ws) => ws.withGuest(input.workspace_id, serviceListing))

export const statusService = (input: ServiceNameInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, ({ connection, paths, record }) =>
      Effect.map(guestServiceStatus(connection, record.id, input.service_name), (s) =>
        resultOf(record, s, publishedPorts(paths.dir, s.name)))))

export const stopService = (input: ServiceNameInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, ({ connection, paths, record }) =>
      Effect.map(
        // Its ports close first: nothing is carried to a service that is going away.
        Effect.zipRight(
          Effect.sync(() => stopForwarder(paths.dir, input.service_name)),
          stopGuestService(connection, record.id, input.service_name, SERVICE_STOP_TIMEOUT_MS)
        ),
        (s) => resultOf(record, s)
      ), { activity: true }))

export const logsService = (input: ServiceLogsInput) =>
  Effect.gen(function*() {
    if (input.all && input.tail_lines !== undefined) {
      return yield* new InvalidInput({ detail: "tail_lines: give tail_lines or all, not both" })
    }
    const tailLines = input.all ? null : input.tail_lines ?? DEFAULT_SERVICE_LOG_TAIL_LINES
    const config = yield* PyroConfig
    const budget = yield* resultBudget(config)
    const ws = yield* WorkspaceManager
    return yield* ws.withGuest(input.workspace_id, ({ connection, paths, record }) =>
      Effect.flatMap(redactorFor(paths.dir), (redactor) =>
      Effect.map(guestServiceLogs(connection, record.id, input.service_name, tailLines, config.maxOutputBytes, redactor), (logs) => {
        const stdout = shapeCaptured("stdout", logs.stdout, budget)
        const stderr = shapeCaptured("stderr", logs.stderr, budget)
        return {
          workspace_id: record.id,
          execution_mode: record.execution_mode,
          service_name: input.service_name,
          stdout: stdout.text,
          stderr: stderr.text,
          tail_lines: tailLines,
          stdout_truncated: stdout.truncated,
          stderr_truncated: stderr.truncated
        }
      })))
  })
