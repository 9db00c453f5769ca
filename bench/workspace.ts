/**
 * bench/workspace: in one run, on one workspace VM, each against the same
 * bytes or round trip over the same leased channel, with nothing else on it:
 *  - `workspace exec true` round trip (p50) against a raw ping round trip;
 *  - sync push throughput of a 100 MB tree against raw channel throughput
 *    (100 MB streamed into `cat > /dev/null`);
 *  - a 1 MiB workspace_file_write and workspace_file_read (p50) against the
 *    same 1 MiB streamed into `cat > /dev/null` and out of `cat FILE`.
 * Prints each figure, its ratio, and one summary line for scripts.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { WorkspaceExecInput } from "../src/contract/workspace/exec.js"
import { WorkspaceCreateInput } from "../src/contract/workspace/lifecycle.js"
import { WorkspaceSyncPushInput } from "../src/contract/workspace/sync.js"
import { WorkspaceFileReadInput, WorkspaceFileWriteInput } from "../src/contract/workspace/files.js"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { Caller, OPERATOR } from "../src/services/Caller.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { WorkspaceManager } from "../src/services/WorkspaceManager.js"
import { runCommand } from "../src/vm/execCommand.js"
import type { GuestConnection } from "../src/vm/protocol/mux.js"
import { readFile, writeFile } from "../src/workspace/ops/files.js"
import { benchDir, iterations, p50, runBench } from "./support.js"

const TREE_MB = 100
const MIB = 1024 * 1024

const rawCommand = (connection: GuestConnection, command: ReadonlyArray<string>, stdin?: Stream.Stream<Uint8Array>) =>
  Effect.flatMap(
    runCommand(connection, {
      command: command as [string, ...Array<string>],
      cwd: "/",
      timeoutSeconds: 600,
      maxOutputBytes: 2 * MIB,
      ...(stdin ? { stdin } : {})
    }),
    (r) => (r.exitCode === 0 ? Effect.void : Effect.dieMessage(`raw ${command.join(" ")} failed`))
  )

const program = Effect.scoped(Effect.gen(function*() {
  const n = iterations(30)
  const workspaces = yield* WorkspaceManager
  const ws = yield* workspaces.create(Schema.decodeUnknownSync(WorkspaceCreateInput)({ environment: "tiny", mem_mib: 512 }))
  const id = ws.workspace_id
  yield* Effect.gen(function*() {
    const tree = yield* benchDir("tree")
    const mb = Buffer.alloc(MIB)
    for (let i = 0; i < TREE_MB; i++) {
      mb.fill(i)
      Fs.writeFileSync(Path.join(tree, `f${i}.bin`), mb)
    }
    const chunk = new Uint8Array(256 * 1024)
    const oneMib = "x".repeat(MIB - 1) + "\n"

    // The raw figures, over the connection this process's workspace calls use.
    const raw = yield* workspaces.withGuest(id, ({ connection }) =>
      Effect.gen(function*() {
        const ping = yield* p50(n, connection.ping(new Uint8Array(8)))
        const execTrue = yield* p50(n, rawCommand(connection, ["true"]))
        const sync = yield* p50(n, Effect.ignore(connection.sync))
        const t = performance.now()
        yield* rawCommand(connection, ["sh", "-c", "cat > /dev/null"], Stream.fromIterable(Array.from({ length: TREE_MB * 4 }, () => chunk)))
        const streamSeconds = (performance.now() - t) / 1000
        // Where a push's bytes end: the guest's disk (the extractor writes, then the guest syncs).
        const t2 = performance.now()
        yield* rawCommand(
          connection,
          ["sh", "-c", "dd of=/workspace/raw.bin bs=1M 2>/dev/null && sync && rm /workspace/raw.bin"],
          Stream.fromIterable(Array.from({ length: TREE_MB * 4 }, () => chunk))
        )
        const diskSeconds = (performance.now() - t2) / 1000
        const in1 = yield* p50(n, rawCommand(connection, ["sh", "-c", "cat > /dev/null"], Stream.make(new TextEncoder().encode(oneMib))))
        // The same 1 MiB file the read below reads, out through cat.
        yield* rawCommand(connection, ["sh", "-c", "cat > /workspace/big.txt"], Stream.make(new TextEncoder().encode(oneMib)))
        const out1 = yield* p50(n, rawCommand(connection, ["cat", "/workspace/big.txt"]))
        return { ping, execTrue, sync, tput: TREE_MB / streamSeconds, disk: TREE_MB / diskSeconds, in1, out1 }
      }))

    const execInput = Schema.decodeUnknownSync(WorkspaceExecInput)({ workspace_id: id, command: ["true"] })
    const exec = yield* p50(n, workspaces.exec(execInput))
    const t = performance.now()
    yield* workspaces.syncPush(Schema.decodeUnknownSync(WorkspaceSyncPushInput)({ workspace_id: id, source_path: tree, dest: "/workspace/tree" }))
    const syncTput = TREE_MB / ((performance.now() - t) / 1000)
    const write = yield* p50(n, writeFile(Schema.decodeUnknownSync(WorkspaceFileWriteInput)({ workspace_id: id, path: "big.txt", text: oneMib })))
    const read = yield* p50(n, readFile(Schema.decodeUnknownSync(WorkspaceFileReadInput)({ workspace_id: id, path: "big.txt", max_bytes: MIB })))

    const ratios = {
      exec_ping: exec / raw.ping,
      sync_raw: syncTput / raw.tput,
      write_raw: write / raw.in1,
      read_raw: read / raw.out1
    }
    console.log(`bench/workspace (${n} runs each after a warm-up; ${TREE_MB} MB tree; 1 MiB files)`)
    console.log(`  raw channel ping round trip          p50 ${raw.ping.toFixed(2)} ms`)
    console.log(`  raw exec true (no journal, no sync)  p50 ${raw.execTrue.toFixed(2)} ms`)
    console.log(`  raw SYNC (the guest's sync())        p50 ${raw.sync.toFixed(2)} ms`)
    console.log(`  workspace exec true round trip       p50 ${exec.toFixed(2)} ms   ratio ${ratios.exec_ping.toFixed(1)} (goal <= 3)`)
    console.log(`  raw channel stream into cat          ${raw.tput.toFixed(1)} MB/s`)
    console.log(`  raw stream into dd bs=1M > file, sync ${raw.disk.toFixed(1)} MB/s`)
    console.log(`  workspace sync push (100 files)      ${syncTput.toFixed(1)} MB/s   ratio ${ratios.sync_raw.toFixed(2)} (goal >= 0.7)`)
    console.log(`  raw 1 MiB into cat > /dev/null       p50 ${raw.in1.toFixed(1)} ms`)
    console.log(`  workspace_file_write 1 MiB           p50 ${write.toFixed(1)} ms   ratio ${ratios.write_raw.toFixed(2)} (goal <= 2)`)
    console.log(`  raw 1 MiB file out of cat            p50 ${raw.out1.toFixed(1)} ms`)
    console.log(`  workspace_file_read 1 MiB            p50 ${read.toFixed(1)} ms   ratio ${ratios.read_raw.toFixed(2)} (goal <= 2)`)
    console.log(
      `workspace: exec_ping=${ratios.exec_ping.toFixed(2)} sync_raw=${ratios.sync_raw.toFixed(2)} ` +
        `write_raw=${ratios.write_raw.toFixed(2)} read_raw=${ratios.read_raw.toFixed(2)}`
    )
  }).pipe(Effect.ensuring(workspaces.remove(id)))
}))

runBench(Effect.scoped(Effect.gen(function*() {
  const stateDir = yield* benchDir("workspace")
  // The operator's benchmark: its host paths are its own.
  yield* program.pipe(
    Effect.provideService(Caller, OPERATOR),
    Effect.provide(servicesLayer(layerWith({ stateDir }), ProgressSilent))
  )
})))
