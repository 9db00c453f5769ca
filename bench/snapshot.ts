/**
 * bench/snapshot: on one `debian:12` workspace with 200 MB written into
 * /workspace, median of N each (BENCH_N, default 5):
 *  - snapshot_create of the running workspace (freeze, a new qcow2 layer,
 *    QEMU switched onto it, thaw), a small file written before each, untimed;
 *  - workspace_reset to a snapshot holding the 200 MB (VM discarded, a new
 *    layer over the snapshot's, VM booted on it, secrets and attach done);
 *  - workspace_fork of the running workspace (1 GiB guest: paused, disk layer
 *    split, device state saved, RAM file copied; the copy resumed), the copy
 *    deleted after each, untimed;
 * each against a cold boot of the same shape: workspace_create of `debian:12`
 * with templates off (PYRO_COLD_BOOT's knob), deleted after, untimed.
 * Prints each figure and its ratio (goals: snapshot <= 0.2, reset <= 0.3, fork <= 0.3),
 * and one summary line for scripts.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { WorkspaceExecInput } from "../src/contract/workspace/exec.js"
import { WorkspaceCreateInput } from "../src/contract/workspace/lifecycle.js"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { Caller, OPERATOR } from "../src/services/Caller.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { WorkspaceManager } from "../src/services/WorkspaceManager.js"
import { benchDir, fmtMs, iterations, median, runBench } from "./support.js"

const BLOB_MB = 200
const createInput = Schema.decodeUnknownSync(WorkspaceCreateInput)({ environment: "debian:12" })

/** Median wall time of `n` runs of `timed(i)` (after one warm-up, i = 0), each after `before(i)`, untimed. */
const p50 = <E, R, E2, R2>(
  n: number,
  timed: (i: number) => Effect.Effect<unknown, E, R>,
  before: (i: number) => Effect.Effect<unknown, E2, R2>
) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i <= n; i++) {
      yield* before(i)
      const t = performance.now()
      yield* timed(i)
      if (i > 0) times.push(performance.now() - t)
    }
    return median(times)
  })

/** snapshot_create and workspace_reset on one workspace holding the blob (templates on, as pyro runs by default). */
const snapshotAndReset = (n: number) =>
  Effect.gen(function*() {
    const workspaces = yield* WorkspaceManager
    const id = (yield* workspaces.create(createInput)).workspace_id
    return yield* Effect.gen(function*() {
      const exec = (command: string) =>
        Effect.flatMap(
          workspaces.exec(Schema.decodeUnknownSync(WorkspaceExecInput)({ workspace_id: id, command, timeout_seconds: 600 })),
          (r) => (r.exit_code === 0 ? Effect.void : Effect.dieMessage(`${command} failed: ${r.stderr}`))
        )
      yield* exec(`head -c ${BLOB_MB}M /dev/urandom > /workspace/blob && sync`)
      const snapshot = yield* p50(
        n,
        (i) => workspaces.snapshotCreate(id, `s${i}`),
        (i) => exec(`echo ${i} > /workspace/step.txt`)
      )
      // Every reset goes back to the last snapshot: the blob and all.
      const reset = yield* p50(n, () => workspaces.reset(id, `s${n}`), () => Effect.void)
      yield* exec(`test $(stat -c %s /workspace/blob) -eq ${BLOB_MB * 1024 * 1024}`)
      // A fork of the running workspace, memory and disk; each copy deleted before the next, untimed.
      let copy = ""
      const dropCopy = Effect.suspend(() => (copy ? Effect.asVoid(workspaces.remove(copy)) : Effect.void))
      const fork = yield* p50(
        n,
        () => Effect.map(workspaces.fork({ workspace_id: id }), (ws) => (copy = ws.workspace_id)),
        () => dropCopy
      ).pipe(Effect.ensuring(dropCopy))
      return { snapshot, reset, fork }
    }).pipe(Effect.ensuring(workspaces.remove(id)))
  })

/** The baseline: a cold workspace_create of the same shape, deleted after each, untimed. */
const coldCreate = (n: number) =>
  Effect.gen(function*() {
    const workspaces = yield* WorkspaceManager
    let last = ""
    return yield* p50(
      n,
      () => Effect.map(workspaces.create(createInput), (ws) => (last = ws.workspace_id)),
      () => (last ? Effect.asVoid(workspaces.remove(last)) : Effect.void)
    ).pipe(Effect.ensuring(Effect.suspend(() => (last ? Effect.asVoid(workspaces.remove(last)) : Effect.void))))
  })

const goal = (ratio: number, max: number) => `${ratio.toFixed(3)} (goal <= ${max}${ratio <= max ? "" : ", not met"})`

runBench(Effect.scoped(Effect.gen(function*() {
  const n = iterations(5)
  const stateDir = yield* benchDir("snapshot")
  const withConfig = (templates: boolean) => <A, E>(program: Effect.Effect<A, E, WorkspaceManager | Caller>) =>
    program.pipe(
      Effect.provideService(Caller, OPERATOR),
      Effect.provide(servicesLayer(layerWith({ stateDir, templates }), ProgressSilent))
    )
  const { snapshot, reset, fork } = yield* withConfig(true)(snapshotAndReset(n))
  const cold = yield* withConfig(false)(coldCreate(n))

  console.log(`bench/snapshot (${n} runs each after a warm-up; debian:12 workspace with ${BLOB_MB} MB in /workspace)`)
  console.log(`  cold workspace_create (templates off)   median ${fmtMs(cold)}`)
  console.log(`  snapshot_create (running, frozen)       median ${fmtMs(snapshot)}   ratio ${goal(snapshot / cold, 0.2)}`)
  console.log(`  workspace_reset to a snapshot            median ${fmtMs(reset)}   ratio ${goal(reset / cold, 0.3)}`)
  console.log(`  workspace_fork (running, 1 GiB guest)   median ${fmtMs(fork)}   ratio ${goal(fork / cold, 0.3)}`)
  console.log(
    `snapshot: snapshot_cold=${(snapshot / cold).toFixed(3)} reset_cold=${(reset / cold).toFixed(3)} fork_cold=${(fork / cold).toFixed(3)}`
  )
})))
