/**
 * The host's side of the agent's service tool (`/proc/1/exe service ...`,
 * guest/agent/service.c): start, wait for readiness, stop, status, list and
 * logs of a workspace's services, each one ordinary exec. The records are the
 * guest's: every field is checked and bounded here before anything uses it.
 */
import * as Effect from "effect/Effect"
import { WorkspaceServiceError, type WorkspaceServiceProblem } from "../contract/errors.js"
import { SERVICE_NAME_PATTERN } from "../contract/workspace/services.js"
import type { GuestChannelError } from "../vm/errors.js"
import { type CommandOutcome, DEFAULT_GUEST_ENV, type OutputFilter, runCommand } from "../vm/execCommand.js"
import { GENERATION_SERVICES } from "../vm/protocol/constants.js"
import { type GuestConnection, requireGeneration } from "../vm/protocol/mux.js"
import { GUEST_AGENT_BINARY } from "./import/guestUntar.js"

export type GuestServiceState = "running" | "stopped" | "failed"
export type GuestReadinessType = "file" | "tcp" | "http" | "command"
export type GuestStopReason = "sigterm" | "sigkill" | "ready_timeout" | "exited" | "supervisor_lost"

/** One service as the guest records it; times in milliseconds since the epoch. */
export interface GuestService {
  readonly name: string
  readonly state: GuestServiceState
  readonly command: string
  readonly cwd: string
  readonly readyType: GuestReadinessType | null
  readonly readyTarget: string
  readonly pid: number | null
  readonly pgid: number | null
  readonly startedAt: number
  readonly readyAt: number | null
  readonly endedAt: number | null
  readonly exitCode: number | null
  readonly signal: number | null
  readonly stopReason: GuestStopReason | null
}

/** How the host tells the guest's answers apart (service.c's exit statuses). */
const EXIT = { notFound: 3, running: 7, ended: 8, notReady: 9, notStarted: 10 } as const

/** More services than this in one listing is a malformed answer (each is a start the host asked for). */
const MAX_SERVICES = 1024
/** A record is 15 fields; the command dominates, and the host bounds it (SERVICE_COMMAND_MAX_BYTES). */
const MAX_RECORD_BYTES = 96 * 1024
const TOOL_TIMEOUT_SECONDS = 60
/** The guest stops a service that missed its readiness: SIGTERM, 2 s, SIGKILL, up to 5 s (service.c). */
const READY_TIMEOUT_STOP_SECONDS = 7
/** After SIGKILL, how long the guest waits for the supervisor (service.c KILL_WAIT_MS). */
const KILL_WAIT_SECONDS = 5

const RECORD_FIELDS = 15
const STATES = new Set<string>(["running", "stopped", "failed"])
const READY_TYPES = new Set<string>(["file", "tcp", "http", "command"])
const STOP_REASONS = new Set<string>(["sigterm", "sigkill", "ready_timeout", "exited", "supervisor_lost"])
const NAME = new RegExp(SERVICE_NAME_PATTERN)
const utf8 = new TextDecoder("utf-8", { fatal: false })

/** A decimal within `max`, or null for an empty field; undefined when malformed. */
const number = (text: string, max: number, min = 0): number | null | undefined => {
  if (text === "") return null
  if (!/^\d{1,16}$/.test(text)) return undefined
  const n = Number(text)
  return n >= min && n <= max ? n : undefined
}

/** Dates a result can hold (ISO strings): ±8.64e15 ms; the guest clock is the guest's. */
const MAX_TIME_MS = 8.64e15

/**
 * The tool's records (service.c: 15-field "service" records, then "end" COUNT),
 * parsed strictly; a string says what was malformed.
 */
export const parseServiceRecords = (bytes: Uint8Array): Array<GuestService> | string => {
  if (bytes.byteLength > 0 && bytes[bytes.byteLength - 1] !== 0) return "an unended field"
  const parts = utf8.decode(bytes).split("\0")
  parts.pop()
  const out: Array<GuestService> = []
  let i = 0
  while (parts[i] === "service") {
    if (i + RECORD_FIELDS > parts.length) return `record ${out.length + 1} is cut short`
    const [, name, state, command, cwd, readyType, readyTarget, pid, pgid, started, ready, ended, exit, signal, reason] =
      parts.slice(i, i + RECORD_FIELDS) as [string, ...Array<string>] & { length: 15 }
    const fields = {
      pid: number(pid!, 2 ** 22, 1),
      pgid: number(pgid!, 2 ** 22, 1),
      startedAt: number(started!, MAX_TIME_MS),
      readyAt: number(ready!, MAX_TIME_MS),
      endedAt: number(ended!, MAX_TIME_MS),
      exitCode: number(exit!, 255),
      signal: number(signal!, 64, 1)
    }
    const bad = Object.entries(fields).find(([, v]) => v === undefined)?.[0]
    if (bad) return `record ${out.length + 1}: ${bad}`
    if (!NAME.test(name!)) return `record ${out.length + 1}: its name`
    if (!STATES.has(state!)) return `record ${out.length + 1}: its state`
    if (readyType !== "" && !READY_TYPES.has(readyType!)) return `record ${out.length + 1}: its readiness`
    if (reason !== "" && !STOP_REASONS.has(reason!)) return `record ${out.length + 1}: its stop reason`
    if (fields.startedAt === null) return `record ${out.length + 1}: no start time`
    // A running service has not ended; an ended one says how.
    if ((state === "running") !== (fields.endedAt === null)) return `record ${out.length + 1}: its end`
    out.push({
      name: name!,
      state: state as GuestServiceState,
      command: command!,
      cwd: cwd!,
      readyType: readyType === "" ? null : readyType as GuestReadinessType,
      readyTarget: readyTarget!,
      pid: fields.pid!,
      pgid: fields.pgid!,
      startedAt: fields.startedAt!,
      readyAt: fields.readyAt!,
      endedAt: fields.endedAt!,
      exitCode: fields.exitCode!,
      signal: fields.signal!,
      stopReason: reason === "" ? null : reason as GuestStopReason
    })
    if (out.length > MAX_SERVICES) return "more services than any workspace holds"
    i += RECORD_FIELDS
  }
  const count = parts[i] === "end" && i + 2 === parts.length ? number(parts[i + 1]!, MAX_SERVICES) : undefined
  if (count === undefined || count === null || count !== out.length) return "its end record"
  if (new Set(out.map((s) => s.name)).size !== out.length) return "a service listed twice"
  return out
}

interface ToolRun {
  readonly workspaceId: string
  readonly serviceName: string
}

const serviceError = (run: ToolRun, problem: WorkspaceServiceProblem, detail: string) =>
  new WorkspaceServiceError({ workspaceId: run.workspaceId, serviceName: run.serviceName, problem, detail })

/** The tool's one-line complaint, shortened to its reason; the guest wrote it, so it is cut and cleaned. */
export const toolComplaint = (outcome: CommandOutcome) => {
  const line = utf8.decode(outcome.stderr.view()).trim().split("\n").at(-1) ?? ""
  // "service: OP: NAME: WHY": the name is ours already; keep the why.
  const why = line.replace(/^service: [a-z]+: [^:]*: /, "").replace(/[^\x20-\x7e]/g, "?").slice(0, 300)
  return why || `the service tool exited with ${outcome.exitCode}`
}

const runTool = (
  connection: GuestConnection,
  args: Array<string>,
  options: { readonly timeoutSeconds?: number; readonly maxStdout?: number; readonly filter?: OutputFilter } = {}
) =>
  Effect.zipRight(
    requireGeneration(connection, GENERATION_SERVICES, "services"),
    runCommand(connection, {
      command: [GUEST_AGENT_BINARY, "service", ...args],
      cwd: "/",
      timeoutSeconds: options.timeoutSeconds ?? TOOL_TIMEOUT_SECONDS,
      maxOutputBytes: options.maxStdout ?? MAX_RECORD_BYTES,
      env: DEFAULT_GUEST_ENV,
      ...(options.filter ? { filter: options.filter } : {})
    })
  )

/** The records of an answer, or the public error for a malformed one. */
const recordsOf = (run: ToolRun, outcome: CommandOutcome, maxRecords: number) => {
  if (outcome.stdout.truncated) return Effect.fail(serviceError(run, "failed", "the guest's answer is too large"))
  const parsed = parseServiceRecords(outcome.stdout.view())
  if (typeof parsed === "string") return Effect.fail(serviceError(run, "failed", `the guest's answer is malformed (${parsed})`))
  if (parsed.length > maxRecords) return Effect.fail(serviceError(run, "failed", "the guest's answer is malformed (too many records)"))
  return Effect.succeed(parsed)
}

/** The one record of the service asked for, whatever the exit status said (wait and stop print it either way). */
const oneRecord = (run: ToolRun, outcome: CommandOutcome) =>
  Effect.flatMap(recordsOf(run, outcome, 1), (records) =>
    records.length === 1 && records[0]!.name === run.serviceName
      ? Effect.succeed(records[0]!)
      : Effect.fail(serviceError(run, "failed", "the guest's answer is malformed (not the service asked for)")))

/** A failure exit as the public error: the statuses every operation shares. */
const failure = (run: ToolRun, outcome: CommandOutcome) =>
  serviceError(
    run,
    outcome.exitCode === EXIT.notFound
      ? "not_found"
      : outcome.exitCode === EXIT.running
      ? "already_running"
      : outcome.exitCode === EXIT.notStarted
      ? "not_started"
      : "failed",
    toolComplaint(outcome)
  )

const recordOrFailure = (run: ToolRun, outcome: CommandOutcome) =>
  outcome.exitCode === 0 ? oneRecord(run, outcome) : Effect.fail(failure(run, outcome))

export interface GuestServiceStart {
  readonly name: string
  /** A shell command line (`/bin/sh -c`). */
  readonly command: string
  readonly cwd: string
  /** The command's whole environment. */
  readonly env: ReadonlyArray<readonly [string, string]>
  /** Waited for in the same exec, polled in the guest; one that never comes is stopped there. */
  readonly readiness?: {
    readonly type: GuestReadinessType
    readonly target: string
    readonly timeoutMs: number
    readonly intervalMs: number
  }
}

/** How a start ended: running (and ready, with readiness), or the record of one that exited first or was not ready in time. */
export type GuestStartOutcome =
  | { readonly _tag: "Running"; readonly service: GuestService }
  | { readonly _tag: "Exited"; readonly service: GuestService }
  | { readonly _tag: "NotReady"; readonly service: GuestService }

/** Start a service under its supervisor and wait for its readiness, in one exec. */
export const startGuestService = (
  connection: GuestConnection,
  workspaceId: string,
  start: GuestServiceStart
): Effect.Effect<GuestStartOutcome, WorkspaceServiceError | GuestChannelError> =>
  Effect.gen(function*() {
    const run = { workspaceId, serviceName: start.name }
    const ready = start.readiness
    const outcome = yield* runTool(connection, [
      "start",
      start.name,
      "--cwd",
      start.cwd,
      ...start.env.flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      ...(ready
        ? ["--ready-type", ready.type, "--ready-target", ready.target, "--timeout-ms", String(ready.timeoutMs), "--interval-ms", String(ready.intervalMs)]
        : []),
      "--",
      start.command
    ], { timeoutSeconds: Math.ceil((ready?.timeoutMs ?? 0) / 1000) + READY_TIMEOUT_STOP_SECONDS + TOOL_TIMEOUT_SECONDS })
    const tag = outcome.exitCode === 0
      ? "Running"
      : outcome.exitCode === EXIT.ended
      ? "Exited"
      : outcome.exitCode === EXIT.notReady
      ? "NotReady"
      : undefined
    if (!tag) return yield* failure(run, outcome)
    return { _tag: tag, service: yield* oneRecord(run, outcome) }
  })

/** Stop a service's whole process group: SIGTERM, then SIGKILL after `timeoutMs`; returns its record. */
export const stopGuestService = (connection: GuestConnection, workspaceId: string, name: string, timeoutMs: number) =>
  Effect.flatMap(
    runTool(connection, ["stop", name, "--timeout-ms", String(timeoutMs)], {
      timeoutSeconds: Math.ceil(timeoutMs / 1000) + KILL_WAIT_SECONDS + TOOL_TIMEOUT_SECONDS
    }),
    (outcome) => recordOrFailure({ workspaceId, serviceName: name }, outcome)
  )

export const guestServiceStatus = (connection: GuestConnection, workspaceId: string, name: string) =>
  Effect.flatMap(runTool(connection, ["status", name]), (outcome) => recordOrFailure({ workspaceId, serviceName: name }, outcome))

export const listGuestServices = (connection: GuestConnection, workspaceId: string) =>
  Effect.flatMap(runTool(connection, ["list"], { maxStdout: MAX_RECORD_BYTES * 16 }), (outcome) => {
    const run = { workspaceId, serviceName: "" }
    return outcome.exitCode === 0 ? recordsOf(run, outcome, MAX_SERVICES) : Effect.fail(failure(run, outcome))
  })

/**
 * A service's logs: its stdout and its stderr, whole or their last
 * `tailLines` lines, held up to `maxBytes` each (the head, and always the
 * tail: CappedOutput). The bytes are the service's own output, unchecked.
 */
export const guestServiceLogs = (
  connection: GuestConnection,
  workspaceId: string,
  name: string,
  tailLines: number | null,
  maxBytes: number,
  /** The workspace's secret redaction, applied to the logs as they arrive (before any cut). */
  filter: OutputFilter
) =>
  Effect.flatMap(
    runTool(connection, ["logs", name, ...(tailLines === null ? [] : ["--tail-lines", String(tailLines)])], {
      maxStdout: maxBytes,
      filter
    }),
    (outcome) =>
      outcome.exitCode === 0
        ? Effect.succeed({ stdout: outcome.stdout, stderr: outcome.stderr })
        : Effect.fail(failure({ workspaceId, serviceName: name }, outcome))
  )
