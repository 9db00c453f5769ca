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
import { workspacePaths, workspacesRoot } from "../../src/workspace/store.js"
import { RAM_DIR, sweepOrphanRam } from "../../src/vm/ramFile.js"
import { isAlive, type ProcessIdentity, selfIdentity } from "../../src/vm/procfs.js"
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
 * whose command line names this run's directory, then removes it. A run
 * killed before its teardown (vitest itself killed) is cleaned the same way
 * by the next run's setup: each run root names the process that made it.
 */
const RUN_ROOT_PREFIX = "pyro-tests-"
const OWNER_FILE = "owner.json"

const removeRunRoot = (root: string) => {
  for (const pid of qemuProcessesUnder(root)) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  // A workspace VM's RAM file is outside its directory (on the host's tmpfs).
  for (const stateDir of readDir(root)) {
    for (const dir of readDir(workspacesRoot(stateDir))) Fs.rmSync(workspacePaths(stateDir, Path.basename(dir)).ram, { force: true })
  }
  Fs.rmSync(root, { recursive: true, force: true })
  // And those of state directories a test removed itself after killing their VMs.
  Effect.runSync(sweepOrphanRam(RAM_DIR, 0))
}

const readDir = (dir: string) => {
  try {
    return Fs.readdirSync(dir).map((n) => Path.join(dir, n))
  } catch {
    return []
  }
}

/** Run roots whose vitest is gone: owner dead, or never written by a setup a minute ago. */
const removeAbandonedRunRoots = () => {
  for (const name of Fs.readdirSync(Os.tmpdir()).filter((n) => n.startsWith(RUN_ROOT_PREFIX))) {
    const root = Path.join(Os.tmpdir(), name)
    let owner: ProcessIdentity | undefined
    try {
      owner = JSON.parse(Fs.readFileSync(Path.join(root, OWNER_FILE), "utf8")) as ProcessIdentity
    } catch {
      owner = undefined
    }
    const ownerless = !owner && Date.now() - Fs.statSync(root).mtimeMs > 60_000
    if (owner ? !isAlive(owner) : ownerless) removeRunRoot(root)
  }
}

removeAbandonedRunRoots()
const runRoot = Fs.mkdtempSync(Path.join(Os.tmpdir(), RUN_ROOT_PREFIX))
Fs.writeFileSync(Path.join(runRoot, OWNER_FILE), JSON.stringify(selfIdentity()))
process.env.PYRO_TEST_RUN_ROOT = runRoot

const teardown = () => removeRunRoot(runRoot)

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
