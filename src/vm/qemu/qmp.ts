/**
 * A small QMP client: QEMU's JSON control protocol over its unix socket.
 * Used for snapshots (pause, save device state, restore). Replies are
 * matched to commands by id; events are ignored. QEMU is trusted less than
 * the code here: every reply is bounded and checked.
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"

export class QmpError extends Data.TaggedError("QmpError")<{ readonly command: string; readonly detail: string }> {
  override get message() {
    return `QMP ${this.command}: ${this.detail}`
  }
}

const MAX_LINE_BYTES = 1024 * 1024

export interface QmpClient {
  readonly execute: (command: string, args?: Record<string, unknown>) => Effect.Effect<unknown, QmpError>
}

const connectOnce = (path: string) =>
  Effect.async<Net.Socket, QmpError>((resume) => {
    const socket = Net.createConnection(path)
    socket.once("connect", () => resume(Effect.succeed(socket)))
    socket.once("error", (e) => resume(Effect.fail(new QmpError({ command: "connect", detail: e.message }))))
  })

/** Connect (retrying while QEMU creates the socket), negotiate capabilities; closed with the scope. */
export const connectQmp = (path: string, timeoutMs: number): Effect.Effect<QmpClient, QmpError, Scope.Scope> =>
  Effect.gen(function*() {
    // Only one attempt is the (uninterruptible) acquire: retries and the timeout stay outside,
    // where they can be cut short. Inside, a QEMU that died before listening kept the retries
    // going forever, and with them whoever waited for this fiber to be interrupted.
    const socket = yield* Effect.acquireRelease(connectOnce(path), (s) => Effect.sync(() => s.destroy())).pipe(
      Effect.retry(Schedule.spaced("5 millis")),
      Effect.timeoutFail({
        duration: timeoutMs,
        onTimeout: () => new QmpError({ command: "connect", detail: `no QMP socket at ${path} within ${timeoutMs} ms` })
      })
    )
    const pending = new Map<number, Deferred.Deferred<unknown, QmpError>>()
    const greeting = yield* Deferred.make<void, QmpError>()
    let buffer = ""
    let nextId = 1
    const failAll = (detail: string) => {
      Deferred.unsafeDone(greeting, Effect.fail(new QmpError({ command: "greeting", detail })))
      for (const [, d] of pending) Deferred.unsafeDone(d, Effect.fail(new QmpError({ command: "reply", detail })))
      pending.clear()
    }
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      buffer += chunk
      if (buffer.length > MAX_LINE_BYTES) {
        failAll("reply too long")
        socket.destroy()
        return
      }
      let newline: number
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim()
        buffer = buffer.slice(newline + 1)
        if (!line) continue
        let message: Record<string, unknown>
        try {
          message = JSON.parse(line) as Record<string, unknown>
        } catch {
          failAll("unparsable reply")
          socket.destroy()
          return
        }
        if ("QMP" in message) {
          Deferred.unsafeDone(greeting, Effect.void)
          continue
        }
        const id = typeof message["id"] === "number" ? message["id"] : undefined
        const waiter = id === undefined ? undefined : pending.get(id)
        if (!waiter || id === undefined) continue // events, or replies nobody waits for
        pending.delete(id)
        const error = message["error"] as { desc?: unknown } | undefined
        Deferred.unsafeDone(
          waiter,
          error
            ? Effect.fail(new QmpError({ command: String(id), detail: String(error.desc ?? "error") }))
            : Effect.succeed(message["return"])
        )
      }
    })
    socket.on("close", () => failAll("QEMU closed the QMP socket"))

    const execute = (command: string, args?: Record<string, unknown>) =>
      Effect.gen(function*() {
        const id = nextId++
        const reply = yield* Deferred.make<unknown, QmpError>()
        pending.set(id, reply)
        socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`)
        return yield* Deferred.await(reply).pipe(
          Effect.mapError((e) => new QmpError({ command, detail: e.detail })),
          Effect.timeoutFail({
            duration: timeoutMs,
            onTimeout: () => new QmpError({ command, detail: `no reply within ${timeoutMs} ms` })
          })
        )
      })

    yield* Deferred.await(greeting).pipe(
      Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new QmpError({ command: "greeting", detail: "none" }) })
    )
    yield* execute("qmp_capabilities")
    return { execute }
  })

/** Poll query-migrate until it is done; a failed migration is an error. */
export const awaitMigration = (qmp: QmpClient, what: string, timeoutMs: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const info = (yield* qmp.execute("query-migrate")) as { status?: string; "error-desc"?: string } | undefined
      const status = info?.status
      if (status === "completed") return
      if (status === "failed" || status === "cancelled") {
        return yield* new QmpError({ command: what, detail: `migration ${status}: ${info?.["error-desc"] ?? "no detail"}` })
      }
      if (Date.now() > deadline) return yield* new QmpError({ command: what, detail: `not done within ${timeoutMs} ms` })
      yield* Effect.sleep("5 millis")
    }
  })
