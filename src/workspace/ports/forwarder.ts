/**
 * A service's published ports, as a process of their own: listens on the
 * host's 127.0.0.1 for each port and carries every connection to the guest's
 * 127.0.0.1:GUEST_PORT over the workspace's channel, as an exec of the agent's
 * `connect` tool (one exec per connection; no guest network is involved).
 *
 * Lifecycle, with the process that starts it (spawn.ts): bind every port and
 * print `{"ports": [...]}` (or `{"error": "..."}`) as one line on stdout; wait
 * for `go` on stdin (the service has started), or exit at stdin's end; then
 * serve until the service is no longer the running one it was at `go` (checked
 * every second), the workspace's VM is gone, or SIGTERM (service_stop).
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import { PUBLISHED_PORT_HOST } from "../../contract/workspace/services.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { DEFAULT_GUEST_ENV } from "../../vm/execCommand.js"
import { GENERATION_SERVICES } from "../../vm/protocol/constants.js"
import { requireGeneration } from "../../vm/protocol/mux.js"
import { guestServiceStatus } from "../guestServices.js"
import { GUEST_AGENT_BINARY } from "../import/guestUntar.js"
import type { PortPair } from "./registry.js"

export interface ForwarderSpec {
  readonly workspaceId: string
  readonly serviceName: string
  /** host_port 0: the host chooses. */
  readonly ports: ReadonlyArray<PortPair>
}

/** Connections carried at once; more are refused (each is an exec in the guest, which runs 64 at most). */
const MAX_CONNECTIONS = 32
const WATCH_INTERVAL = "1 second"

const listen = (port: number) =>
  Effect.async<Net.Server, string>((resume) => {
    const server = Net.createServer({ pauseOnConnect: true })
    server.once("error", (e: NodeJS.ErrnoException) =>
      resume(Effect.fail(e.code === "EADDRINUSE" ? `host port ${port} is in use on ${PUBLISHED_PORT_HOST}` : `host port ${port}: ${e.message}`)))
    server.listen({ host: PUBLISHED_PORT_HOST, port, exclusive: true }, () => resume(Effect.succeed(server)))
  })

/** Resolves when the socket can take more, or has closed. */
const written = (socket: Net.Socket, bytes: Uint8Array) =>
  Effect.async<void>((resume) => {
    if (socket.destroyed || socket.write(bytes)) return resume(Effect.void)
    const done = () => {
      socket.off("drain", done)
      socket.off("close", done)
      resume(Effect.void)
    }
    socket.on("drain", done)
    socket.on("close", done)
  })

const closed = (socket: Net.Socket) =>
  Effect.async<void>((resume) => {
    if (socket.destroyed) return resume(Effect.void)
    socket.once("close", () => resume(Effect.void))
  })

/** One client connection, carried to the guest's port until either side ends it. */
const relay = (spec: ForwarderSpec, socket: Net.Socket, guestPort: number) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(spec.workspaceId, ({ connection }) =>
      Effect.gen(function*() {
        yield* requireGeneration(connection, GENERATION_SERVICES, "published ports")
        const fromClient = Stream.fromAsyncIterable(socket, () => "client gone").pipe(
          Stream.map((chunk) => new Uint8Array(chunk as Buffer)),
          Stream.catchAll(() => Stream.empty)
        )
        socket.resume()
        let ok = true
        yield* Stream.runForEach(
          connection.exec({
            argv: [GUEST_AGENT_BINARY, "connect", String(guestPort)],
            env: DEFAULT_GUEST_ENV,
            cwd: "/",
            timeoutMs: 0,
            stdin: true
          }, fromClient),
          (event) => {
            if (event._tag === "Output") return event.fd === 1 ? written(socket, event.bytes) : Effect.void
            if (event._tag === "Exit") ok = event.exitCode === 0
            else ok = false
            return Effect.void
          }
        )
        // A port nothing listens on, or a failure, resets the client's connection rather than ending it cleanly.
        if (ok) socket.end()
        else socket.resetAndDestroy()
      }), { boot: false })).pipe(
      Effect.raceFirst(closed(socket)),
      Effect.catchAllCause(() => Effect.sync(() => socket.destroy())),
      Effect.ensuring(Effect.sync(() => socket.destroyed || socket.end()))
    )

/** Whether the service started at `startedAt` is still the one running. */
const stillRunning = (spec: ForwarderSpec, startedAt: number | undefined) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(spec.workspaceId, ({ connection }) => guestServiceStatus(connection, spec.workspaceId, spec.serviceName), {
      boot: false
    })).pipe(
      Effect.map((s) => s.state === "running" && (startedAt === undefined || s.startedAt === startedAt) ? s.startedAt : undefined),
      Effect.orElseSucceed(() => undefined)
    )

const line = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

/** The first line of stdin ("go"), or undefined at its end. */
const firstLine = Effect.async<string | undefined>((resume) => {
  let buffered = ""
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString("utf8")
    const at = buffered.indexOf("\n")
    if (at >= 0) finish(buffered.slice(0, at))
  }
  const finish = (value: string | undefined) => {
    process.stdin.off("data", onData)
    process.stdin.off("end", onEnd)
    process.stdin.pause()
    resume(Effect.succeed(value))
  }
  const onEnd = () => finish(undefined)
  process.stdin.on("data", onData)
  process.stdin.on("end", onEnd)
})

export const runForwarder = (spec: ForwarderSpec) =>
  Effect.gen(function*() {
    const bound = yield* Effect.either(Effect.forEach(spec.ports, (p) => Effect.map(listen(p.host_port), (server) => ({ ...p, server }))))
    if (bound._tag === "Left") return yield* line(JSON.stringify({ error: bound.left }))
    const servers = bound.right
    const closeAll = Effect.sync(() => servers.forEach(({ server }) => server.close()))
    const ports = servers.map(({ guest_port, server }) => ({ guest_port, host_port: (server.address() as Net.AddressInfo).port }))
    yield* line(JSON.stringify({ ports }))
    if ((yield* firstLine) !== "go") return yield* closeAll

    let startedAt = yield* stillRunning(spec, undefined)
    const runtime = yield* Effect.runtime<WorkspaceManager>()
    let active = 0
    for (const { guest_port, server } of servers) {
      server.on("connection", (socket: Net.Socket) => {
        socket.on("error", () => {})
        if (active >= MAX_CONNECTIONS) return socket.destroy()
        active++
        Runtime.runFork(runtime)(Effect.ensuring(relay(spec, socket, guest_port), Effect.sync(() => active--)))
      })
    }
    const stop = Effect.async<void>((resume) => {
      process.once("SIGTERM", () => resume(Effect.void))
    })
    const watch = Effect.gen(function*() {
      while (startedAt !== undefined) {
        yield* Effect.sleep(WATCH_INTERVAL)
        startedAt = yield* stillRunning(spec, startedAt)
      }
    })
    yield* Effect.raceFirst(watch, stop)
    yield* closeAll
  })
