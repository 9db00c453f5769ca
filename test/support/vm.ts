/** Helpers for tests that boot real VMs: isolated state directories and leak checks. */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { servicesLayer } from "../../src/layers/App.js"
import { layerWith } from "../../src/layers/PyroConfigLive.js"
import { ProgressSilent } from "../../src/services/Progress.js"
import { Caller, OPERATOR } from "../../src/services/Caller.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { KernelStore } from "../../src/services/KernelStore.js"
import { Vmm } from "../../src/services/Vmm.js"

/**
 * A fresh state directory (VM files, sockets) per test file, inside this
 * run's directory (see globalSetup's teardown); the cache is the user's.
 */
export const makeStateDir = () =>
  Fs.mkdtempSync(Path.join(process.env.PYRO_TEST_RUN_ROOT ?? Os.tmpdir(), "pyro-test-"))

export const testLayer = (stateDir: string, overrides: Parameters<typeof layerWith>[0] = {}) =>
  servicesLayer(layerWith({ stateDir, ...overrides }), ProgressSilent)

/** Pids of QEMU processes whose command line mentions `stateDir`. */
export const qemuProcessesUnder = (stateDir: string): Array<number> =>
  Fs.readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((pid) => {
      try {
        const cmd = Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
        return cmd.includes("qemu-system") && cmd.includes(stateDir)
      } catch {
        return false
      }
    })
    .map(Number)

/** Pids of the published-port forwarders serving `workspace`. */
export const forwarders = (workspace: string) =>
  Fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((pid) => {
    try {
      const cmdline = Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
      return cmdline.includes("portForwarder.cjs") && cmdline.includes(workspace)
    } catch {
      return false
    }
  })

/** VM directories left under the state directory. */
export const vmDirsUnder = (stateDir: string): Array<string> => {
  try {
    return Fs.readdirSync(Path.join(stateDir, "vms"))
  } catch {
    return []
  }
}

/** Poll until `check` holds (processes take a moment to be reaped). */
export const eventually = (check: () => boolean, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep("50 millis")
    }
    return true
  })

export const repoRoot = Path.resolve(import.meta.dirname, "../..")
export const pyroBin = Path.join(repoRoot, "bin", "pyro.js")

/** The user's pyro cache, where globalSetup put the kernel and environments. */
export const userCacheDir = process.env.PYRO_CACHE_DIR ??
  Path.join(process.env.XDG_CACHE_HOME ?? Path.join(Os.homedir(), ".cache"), "pyro")

/**
 * The services driven as the CLI drives them: by the operator, who may name
 * any registry and import any path. Tests of the services themselves use it;
 * tests of what a tool caller may do (test/security) use MCP or the SDK.
 */
export const asOperator = Layer.succeed(Caller, OPERATOR)

/** A `tiny` VM (1 vCPU, 256 MiB, no network) for the scope, attached: what the agent-level tests drive. */
export const bootTinyVm = (prefix: string, options: { readonly channels?: number } = {}) =>
  Effect.gen(function*() {
    const assets = yield* (yield* KernelStore).ensure
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    const vm = yield* (yield* Vmm).bootEphemeral({
      id: `${prefix}${Date.now().toString(16).slice(-7)}`,
      kernel: assets.kernel,
      initrd: assets.initrd,
      rootImage: env.rootImage,
      vcpus: 1,
      memMib: 256,
      network: false,
      ...(options.channels !== undefined ? { channels: options.channels } : {})
    })
    yield* vm.attach
    return vm
  })
