/**
 * bench/shell: a keystroke's round trip on a workspace shell (shell_write of
 * one character, then shell_read with wait_for_idle_ms 0, as the public
 * operations run them) against a raw channel ping, on one workspace VM over
 * the same leased channel. Goal: at most 3 pings.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { WorkspaceCreateInput } from "../src/contract/workspace/lifecycle.js"
import { ShellOpenInput, ShellReadInput, ShellWriteInput } from "../src/contract/workspace/shells.js"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { Caller, OPERATOR } from "../src/services/Caller.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { WorkspaceManager } from "../src/services/WorkspaceManager.js"
import { openShell, readShell, writeShell } from "../src/workspace/ops/shells.js"
import { benchDir, iterations, median, runBench } from "./support.js"

const program = Effect.scoped(Effect.gen(function*() {
  const n = iterations(50)
  const workspaces = yield* WorkspaceManager
  const ws = yield* workspaces.create(Schema.decodeUnknownSync(WorkspaceCreateInput)({ environment: "tiny", mem_mib: 256 }))
  const workspace_id = ws.workspace_id
  yield* Effect.gen(function*() {
    const { shell_id } = yield* openShell(Schema.decodeUnknownSync(ShellOpenInput)({ workspace_id }))
    let cursor = 0
    const read = (wait_for_idle_ms: number) =>
      Effect.tap(
        readShell(Schema.decodeUnknownSync(ShellReadInput)({ workspace_id, shell_id, cursor, wait_for_idle_ms })),
        (r) => Effect.sync(() => (cursor = r.next_cursor))
      )
    yield* read(500) // the prompt
    // A character, then backspace: the line at the prompt never grows.
    let typed = 0
    const keystroke = () =>
      Effect.zipRight(
      writeShell(Schema.decodeUnknownSync(ShellWriteInput)({
        workspace_id,
        shell_id,
        input: typed++ % 2 === 0 ? "x" : "\x7f",
        append_newline: false
      })),
      read(0)
    )
    // Interleaved, so both see the same load on the host.
    const times = { ping: [] as Array<number>, key: [] as Array<number> }
    const timed = <A, E, R>(into: Array<number>, effect: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        const t = performance.now()
        return Effect.tap(effect, () => Effect.sync(() => into.push(performance.now() - t)))
      })
    yield* workspaces.withGuest(workspace_id, ({ connection }) =>
      Effect.gen(function*() {
        yield* connection.ping(new Uint8Array(8))
        yield* keystroke()
        for (let i = 0; i < n; i++) {
          yield* timed(times.ping, connection.ping(new Uint8Array(8)))
          yield* timed(times.key, keystroke())
        }
      }))
    const ping = median(times.ping)
    const key = median(times.key)
    const ratio = key / ping
    console.log(`bench/shell (${n} runs each, interleaved, after a warm-up)`)
    console.log(`  raw channel ping round trip              p50 ${ping.toFixed(2)} ms`)
    console.log(`  keystroke: shell_write 1 char + shell_read p50 ${key.toFixed(2)} ms   ratio ${ratio.toFixed(1)} (goal <= 3)`)
    console.log(`shell: keystroke_ping=${ratio.toFixed(2)}`)
  }).pipe(Effect.ensuring(workspaces.remove(workspace_id)))
}))

runBench(Effect.scoped(Effect.gen(function*() {
  const stateDir = yield* benchDir("shell")
  yield* program.pipe(
    Effect.provideService(Caller, OPERATOR),
    Effect.provide(servicesLayer(layerWith({ stateDir }), ProgressSilent))
  )
})))
