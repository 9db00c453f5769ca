/**
 * Starting a service's port forwarder (forwarder.ts) as a detached process:
 * it binds the ports and says which, the caller starts the service, then
 * tells it `go` (or kills it if the service did not start). The forwarder
 * outlives the caller: a published port lives as long as its service.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { packageRoot } from "../../host/packageRoot.js"
import { type ProcessIdentity, processStartTime } from "../../vm/procfs.js"
import type { ForwarderSpec } from "./forwarder.js"
import { forwarderLog, PortPair, portsDir } from "./registry.js"

/** The forwarder's one line: the ports it bound, or why it could not. */
const Answer = Schema.parseJson(Schema.Union(
  Schema.Struct({ ports: Schema.Array(PortPair) }),
  Schema.Struct({ error: Schema.String })
))
const decodeAnswer = Schema.decodeUnknownEither(Answer)

const BIND_TIMEOUT_MS = 20_000

export const forwarderBundle = () => Path.join(packageRoot(), "dist", "portForwarder.cjs")

export interface BoundForwarder {
  readonly who: ProcessIdentity
  readonly ports: ReadonlyArray<PortPair>
  /** The service is running: serve from now on. */
  readonly go: Effect.Effect<void>
  /** The service did not start: close the ports. */
  readonly cancel: Effect.Effect<void>
}

/** Spawn the forwarder and wait until its ports are bound, or say why they cannot be. */
export const bindForwarder = (
  workspaceDir: string,
  spec: ForwarderSpec,
  env: Readonly<Record<string, string>>
): Effect.Effect<BoundForwarder, string> =>
  Effect.async<BoundForwarder, string>((resume) => {
    Fs.mkdirSync(portsDir(workspaceDir), { recursive: true, mode: 0o700 })
    const log = Fs.openSync(forwarderLog(workspaceDir, spec.serviceName), "a", 0o600)
    const child = spawn(process.execPath, [forwarderBundle(), JSON.stringify(spec)], {
      detached: true,
      stdio: ["pipe", "pipe", log],
      env: { ...process.env, ...env }
    })
    Fs.closeSync(log)
    let answered = false
    let buffered = ""
    const finish = (result: Effect.Effect<BoundForwarder, string>) => {
      if (answered) return
      answered = true
      clearTimeout(timer)
      child.stdout?.destroy()
      resume(result)
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      finish(Effect.fail(`the port forwarder did not bind within ${BIND_TIMEOUT_MS / 1000}s`))
    }, BIND_TIMEOUT_MS)
    child.on("error", (e) => finish(Effect.fail(`cannot start the port forwarder: ${e.message}`)))
    child.on("exit", () => finish(Effect.fail("the port forwarder exited before binding its ports")))
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8")
      const at = buffered.indexOf("\n")
      if (at < 0) return
      const decoded = decodeAnswer(buffered.slice(0, at))
      if (Either.isLeft(decoded)) return finish(Effect.fail("the port forwarder answered something else"))
      const answer = decoded.right
      if ("error" in answer) return finish(Effect.fail(answer.error))
      const ports = answer.ports
      const pid = child.pid!
      const tell = (word: string) =>
        Effect.sync(() => {
          child.stdin?.end(word)
          child.unref()
        })
      child.removeAllListeners("exit")
      finish(Effect.succeed({
        who: { pid, startTime: processStartTime(pid) ?? 0 },
        ports,
        go: tell("go\n"),
        cancel: Effect.zipRight(tell(""), Effect.sync(() => child.kill("SIGTERM")))
      }))
    })
    // Interrupted before it answered: it goes (it would exit at stdin's end anyway).
    return Effect.sync(() => {
      if (answered) return
      answered = true
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })
