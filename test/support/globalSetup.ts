/**
 * Before any test: bundle the CLI (tests run the real `pyro` binary) and make
 * sure the kernel, agent and tiny environment are in the user's cache, so test
 * files running in parallel do not all build them at once.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { qemuProcessesUnder } from "./vm.js"
import { layerWith } from "../../src/layers/PyroConfigLive.js"
import { EnvironmentStoreLive } from "../../src/layers/EnvironmentStoreLive.js"
import { KernelStoreLive } from "../../src/layers/KernelStoreLive.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { KernelStore } from "../../src/services/KernelStore.js"
import { ProgressSilent } from "../../src/services/Progress.js"

/**
 * Every VM-booting test keeps its state under one directory per run
 * (PYRO_TEST_RUN_ROOT, read by makeStateDir). Test files clean up after
 * themselves; this is the net under them: workspace VMs outlive their
 * creator by design, so a test file killed before its afterAll (a timeout,
 * a crash) would leave them running. The teardown kills, by pid, every QEMU
 * whose command line names this run's directory, then removes it.
 */
const runRoot = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-tests-"))
process.env.PYRO_TEST_RUN_ROOT = runRoot

const teardown = () => {
  for (const pid of qemuProcessesUnder(runRoot)) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  Fs.rmSync(runRoot, { recursive: true, force: true })
}

export default async function setup() {
  execFileSync("node", ["scripts/build.mjs", "--no-types"], { stdio: "inherit" })
  const layer = Layer.mergeAll(KernelStoreLive, EnvironmentStoreLive).pipe(
    Layer.provideMerge(Layer.mergeAll(layerWith({}), ProgressSilent)),
    Layer.provideMerge(NodeContext.layer)
  )
  await Effect.gen(function*() {
    yield* (yield* KernelStore).ensure
    yield* (yield* EnvironmentStore).ensure("tiny")
  }).pipe(Effect.provide(layer), Effect.runPromise)
  return teardown
}
