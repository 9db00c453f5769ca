/**
 * service_start | list | status | logs | stop: long-running processes in a
 * workspace (the original's 2.7.0 names and defaults, with secret_env;
 * with published_ports).
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { Command, intBetween } from "../common.js"
import { withDefault } from "../vm.js"
import { normalizedString, WORKSPACE_PATH, WorkspaceId, WorkspacePath, WorkspaceResultFields } from "./paths.js"
import { SecretEnv } from "./secrets.js"

/** The original's DEFAULT_SERVICE_READY_TIMEOUT_SECONDS and DEFAULT_SERVICE_READY_INTERVAL_MS. */
export const DEFAULT_SERVICE_READY_TIMEOUT_SECONDS = 30
export const DEFAULT_SERVICE_READY_INTERVAL_MS = 500
/** Lines of each log service_logs returns unless told otherwise (the original's value is not known). */
export const DEFAULT_SERVICE_LOG_TAIL_LINES = 200
export const MAX_SERVICE_READY_TIMEOUT_SECONDS = 3600
/** The most a service's command line (and a readiness command) may be, once UTF-8 encoded. */
export const SERVICE_COMMAND_MAX_BYTES = 32 * 1024
export const SERVICE_READY_TARGET_MAX_BYTES = 4096
/** The original's guest SERVICE_NAME_RE. */
export const SERVICE_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

export const ServiceName = Schema.String.pipe(
  Schema.pattern(new RegExp(SERVICE_NAME_PATTERN), {
    message: () => "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
  }),
  Schema.annotations({ description: "The service's name in this workspace (letters, digits, . _ -; at most 64)." })
)

/** Text of at most `max` bytes once UTF-8 encoded, without NUL (it travels as one guest argument). */
const guestText = (max: number) =>
  Schema.String.pipe(
    Schema.minLength(1),
    Schema.filter((s) => {
      if (s.includes("\0")) return "must not contain NUL"
      return Buffer.byteLength(s) <= max || `must be at most ${max} bytes of UTF-8`
    }, { jsonSchema: { maxLength: max } })
  )

/** HOST:PORT, HOST a name, an IPv4 address or [IPv6]; PORT 1..65535. */
const validAddress = (s: string) => {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(s)
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535
}

/** An http: URL in the normal form the guest's client sends (host, port, path and query; nothing else). */
export const normalizeReadinessUrl = (url: string): Either.Either<string, string> => {
  if (/[\x00-\x20\x7f]/.test(url)) return Either.left("must not contain spaces or control characters")
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Either.left("must be a URL: http://HOST[:PORT]/PATH")
  }
  if (parsed.protocol !== "http:") return Either.left("must be an http: URL (https is not supported)")
  if (parsed.username || parsed.password) return Either.left("must not carry a user or password")
  const normal = `http://${parsed.host}${parsed.pathname}${parsed.search}`
  return normal.length <= SERVICE_READY_TARGET_MAX_BYTES
    ? Either.right(normal)
    : Either.left(`must be at most ${SERVICE_READY_TARGET_MAX_BYTES} characters`)
}

const HttpUrl = normalizedString("http://HOST[:PORT]/PATH: ready when a GET answers 2xx or 3xx.", normalizeReadinessUrl)

export const FileReadiness = Schema.Struct({
  type: Schema.Literal("file"),
  path: WorkspacePath.annotations({ description: "Ready once this path exists (relative to /workspace, or absolute under it)." })
})
export const TcpReadiness = Schema.Struct({
  type: Schema.Literal("tcp"),
  address: Schema.String.pipe(
    Schema.filter((s) => validAddress(s) || "must be HOST:PORT (HOST a name, an IPv4 address or [IPv6])", { jsonSchema: {} }),
    Schema.annotations({ description: "HOST:PORT in the guest: ready once a TCP connect succeeds." })
  )
})
export const HttpReadiness = Schema.Struct({ type: Schema.Literal("http"), url: HttpUrl })
export const CommandReadiness = Schema.Struct({
  type: Schema.Literal("command"),
  command: guestText(SERVICE_READY_TARGET_MAX_BYTES).annotations({
    description: "A shell command run in the service's cwd and environment: ready once it exits 0."
  })
})
export const Readiness = Schema.Union(FileReadiness, TcpReadiness, HttpReadiness, CommandReadiness).annotations({
  description: "When the service counts as ready; service_start waits for it (polled inside the guest)."
})
export type Readiness = typeof Readiness.Type

/** Where published ports listen on the host: its loopback only, never another interface. */
export const PUBLISHED_PORT_HOST = "127.0.0.1"
export const MAX_PUBLISHED_PORTS = 16

export const PublishedPortInput = Schema.Struct({
  guest_port: intBetween(1, 65535).pipe(Schema.annotations({ description: "The port the service listens on in the guest (on any address, 127.0.0.1 included)." })),
  host_port: Schema.optional(intBetween(1024, 65535).pipe(
    Schema.annotations({ description: "The host port (on 127.0.0.1) to publish it at; chosen by the host when left out." })
  ))
})

export const PublishedPortsInput = Schema.Array(PublishedPortInput).pipe(
  Schema.maxItems(MAX_PUBLISHED_PORTS),
  Schema.filter((ports) => {
    const guest = new Set(ports.map((p) => p.guest_port))
    const host = ports.flatMap((p) => (p.host_port === undefined ? [] : [p.host_port]))
    if (guest.size !== ports.length) return "names a guest_port twice"
    if (new Set(host).size !== host.length) return "names a host_port twice"
    return true
  }, { jsonSchema: {} }),
  Schema.annotations({
    description: "TCP ports of the service to reach from the host, at 127.0.0.1 only, while the service runs: " +
      "[{guest_port, host_port?}]. Needs the workspace's network_policy egress+published-ports."
  })
)

/** A port published while its service runs. */
export const PublishedPort = Schema.Struct({
  guest_port: Schema.Int,
  host_port: Schema.Int,
  host: Schema.Literal(PUBLISHED_PORT_HOST)
})
export type PublishedPort = typeof PublishedPort.Type

export const ServiceStartInput = Schema.Struct({
  workspace_id: WorkspaceId,
  service_name: ServiceName,
  command: Command.annotations({
    description: "The service's command: a shell command line (run with /bin/sh -c), or an argv array (each word " +
      "passed as it is; a single word is taken as a command line)."
  }),
  cwd: withDefault(WorkspacePath.annotations({ description: "Where the command runs: /workspace or a directory under it." }), WORKSPACE_PATH),
  readiness: Schema.optional(Readiness),
  ready_timeout_seconds: withDefault(
    intBetween(1, MAX_SERVICE_READY_TIMEOUT_SECONDS).pipe(
      Schema.annotations({ description: "How long to wait for readiness; a service not ready by then is stopped and reported failed." })
    ),
    DEFAULT_SERVICE_READY_TIMEOUT_SECONDS
  ),
  ready_interval_ms: withDefault(
    intBetween(10, 60000).pipe(
      Schema.annotations({ description: "How often readiness is checked, in milliseconds." })
    ),
    DEFAULT_SERVICE_READY_INTERVAL_MS
  ),
  secret_env: Schema.optional(SecretEnv),
  published_ports: Schema.optional(PublishedPortsInput)
})
export type ServiceStartInput = typeof ServiceStartInput.Type

export const ServiceNameInput = Schema.Struct({ workspace_id: WorkspaceId, service_name: ServiceName })
export type ServiceNameInput = typeof ServiceNameInput.Type

export const ServiceLogsInput = Schema.Struct({
  workspace_id: WorkspaceId,
  service_name: ServiceName,
  tail_lines: Schema.optional(
    intBetween(0, 1_000_000).pipe(
      Schema.annotations({
        description: `Return the last this many lines of each log (default ${DEFAULT_SERVICE_LOG_TAIL_LINES}).`
      })
    )
  ),
  all: withDefault(
    Schema.Boolean.annotations({ description: "Return the whole logs (tail_lines is then null); not with tail_lines." }),
    false
  )
})
export type ServiceLogsInput = typeof ServiceLogsInput.Type

export const ServiceState = Schema.Literal("running", "stopped", "failed")

/** One service, as start, status, stop and list report it. */
export const ServiceRecord = Schema.Struct({
  service_name: Schema.String,
  command: Schema.String,
  cwd: Schema.String,
  state: ServiceState,
  started_at: Schema.String,
  ready_at: Schema.NullOr(Schema.String),
  ended_at: Schema.NullOr(Schema.String),
  exit_code: Schema.NullOr(Schema.Int),
  pid: Schema.NullOr(Schema.Int),
  /** As started, normalised (a file path absolute under /workspace); null without readiness. */
  readiness: Schema.NullOr(Schema.Union(
    Schema.Struct({ type: Schema.Literal("file"), path: Schema.String }),
    Schema.Struct({ type: Schema.Literal("tcp"), address: Schema.String }),
    Schema.Struct({ type: Schema.Literal("http"), url: Schema.String }),
    Schema.Struct({ type: Schema.Literal("command"), command: Schema.String })
  )),
  /** sigterm, sigkill (service_stop), ready_timeout, exited (by itself), supervisor_lost; null while running. */
  stop_reason: Schema.NullOr(Schema.String),
  /** Ports reachable on the host now (none once the service has ended). */
  published_ports: Schema.Array(PublishedPort)
})
export type ServiceRecord = typeof ServiceRecord.Type

export const ServiceResult = Schema.Struct({ ...WorkspaceResultFields, ...ServiceRecord.fields })
export type ServiceResult = typeof ServiceResult.Type

export const ServiceListResult = Schema.Struct({
  ...WorkspaceResultFields,
  count: Schema.Int,
  running_count: Schema.Int,
  services: Schema.Array(ServiceRecord)
})
export type ServiceListResult = typeof ServiceListResult.Type

export const ServiceLogsResult = Schema.Struct({
  ...WorkspaceResultFields,
  service_name: Schema.String,
  stdout: Schema.String,
  stderr: Schema.String,
  /** The lines asked for from each log's end; null with `all`. */
  tail_lines: Schema.NullOr(Schema.Int),
  /** The text is not all that was asked for: its middle was left out to fit the output budget. */
  stdout_truncated: Schema.Boolean,
  stderr_truncated: Schema.Boolean
})
export type ServiceLogsResult = typeof ServiceLogsResult.Type
