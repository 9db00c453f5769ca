/**
 * bench/workspace: in one run, on one workspace VM,
 *  - `workspace exec true` round trip (p50 of 50) against a raw ping round
 *    trip over the same channel (what any exec must at least cost);
 *  - sync push throughput of a 100 MB tree against raw channel throughput
 *    (100 MB streamed into `cat > /dev/null` over the same connection type).
 * Prints both ratios.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { WorkspaceCreateInput, WorkspaceExecInput, WorkspaceSyncPushInput } from "../src/contract/workspace.js"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { Vmm } from "../src/services/Vmm.js"
import { WorkspaceManager } from "../src/services/WorkspaceManager.js"
import { runCommand } from "../src/vm/execCommand.js"
import { workspacePaths } from "../src/workspace/store.js"
import { benchDir, iterations, median, runBench } from "./support.js"

const TREE_MB = 100

const program = (stateDir: string) => Effect.scoped(Effect.gen(function*() {
  const n = iterations(50)
  const workspaces = yield* WorkspaceManager
  const vmm = yield* Vmm
  const ws = yield* workspaces.create(Schema.decodeUnknownSync(WorkspaceCreateInput)({ environment: "tiny", mem_mib: 512 }))
  const socket = workspacePaths(stateDir, ws.workspace_id).channelSocket
  yield* Effect.gen(function*() {
    // Round trips. One warm-up of each first.
    const ping = new Uint8Array(8)
    const pingMs = yield* Effect.scoped(Effect.gen(function*() {
      const conn = yield* vmm.connect(socket, 15_000)
      yield* conn.ping(ping)
      const times: Array<number> = []
      for (let i = 0; i < n; i++) {
        const t = performance.now()
        yield* conn.ping(ping)
        times.push(performance.now() - t)
      }
      return times
    }))
    const execInput = Schema.decodeUnknownSync(WorkspaceExecInput)({ workspace_id: ws.workspace_id, command: ["true"] })
    yield* workspaces.exec(execInput)
    const execMs: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      yield* workspaces.exec(execInput)
      execMs.push(performance.now() - t)
    }

    // Throughput.
    const tree = yield* benchDir("tree")
    const mb = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < TREE_MB; i++) {
      mb.fill(i)
      Fs.writeFileSync(Path.join(tree, `f${i}.bin`), mb)
    }
    const rawSeconds = yield* Effect.scoped(Effect.gen(function*() {
      const conn = yield* vmm.connect(socket, 15_000)
      const chunk = new Uint8Array(256 * 1024)
      const t = performance.now()
      const r = yield* runCommand(conn, {
        command: ["sh", "-c", "cat > /dev/null"],
        cwd: "/",
        timeoutSeconds: 600,
        maxOutputBytes: 4096,
        stdin: Stream.fromIterable(Array.from({ length: TREE_MB * 4 }, () => chunk))
      })
      if (r.exitCode !== 0) throw new Error("raw stream failed")
      return (performance.now() - t) / 1000
    }))
    const t = performance.now()
    yield* workspaces.syncPush(
      Schema.decodeUnknownSync(WorkspaceSyncPushInput)({ workspace_id: ws.workspace_id, source_path: tree, dest: "/workspace/tree" })
    )
    const syncSeconds = (performance.now() - t) / 1000

    const rawPing = median(pingMs)
    const exec = median(execMs)
    const rawTput = TREE_MB / rawSeconds
    const syncTput = TREE_MB / syncSeconds
    console.log(`bench/workspace (${n} round trips each; ${TREE_MB} MB tree)`)
    console.log(`  raw channel ping round trip        p50 ${rawPing.toFixed(2)} ms`)
    console.log(`  workspace exec true round trip     p50 ${exec.toFixed(2)} ms`)
    console.log(`  ratio exec/ping = ${(exec / rawPing).toFixed(1)}`)
    console.log(`  raw channel stream into cat        ${rawTput.toFixed(1)} MB/s`)
    console.log(`  workspace sync push (100 files)    ${syncTput.toFixed(1)} MB/s`)
    console.log(`  ratio sync/raw throughput = ${(syncTput / rawTput).toFixed(2)}`)
  }).pipe(Effect.ensuring(workspaces.remove(ws.workspace_id)))
}))

runBench(Effect.scoped(Effect.gen(function*() {
  const stateDir = yield* benchDir("workspace")
  yield* program(stateDir).pipe(Effect.provide(servicesLayer(layerWith({ stateDir }), ProgressSilent)))
})))
