import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { clampSpares } from "../vm/spares/store.js"
import { hostPatternProblem } from "../contract/hostPattern.js"
import { type AccelPreference, PyroConfig } from "../services/PyroConfig.js"
import { defaultImportRoots, parseImportRoots } from "../workspace/import/roots.js"
import { DEFAULT_MAX_ACTIVE_VMS } from "../machine/defaults.js"

const optionalString = (name: string) => Config.option(Config.nonEmptyString(name))

const baseDir = (override: string, xdg: string, fallback: string) =>
  Effect.gen(function*() {
    const explicit = yield* optionalString(override)
    if (Option.isSome(explicit)) return Path.resolve(explicit.value)
    const xdgDir = yield* optionalString(xdg)
    return Path.join(Option.getOrElse(xdgDir, () => Path.join(Os.homedir(), fallback)), "pyro")
  })

export const DEFAULT_OUTPUT_BUDGET_BYTES = 32 * 1024
/** Two streams of this, JSON-escaped at worst six bytes per byte, stay under the MCP SDK's 10 MiB message limit. */
export const MAX_OUTPUT_BUDGET_BYTES = 512 * 1024

export const clampOutputBudget = (bytes: number) => Math.min(MAX_OUTPUT_BUDGET_BYTES, Math.max(1024, bytes))

/** `PYRO_ALLOW_HOSTS`: comma-separated allow_hosts entries; set but empty allows nothing. */
export const parseAllowHosts = (value: string): ReadonlyArray<string> | string => {
  const entries = value.split(",").map((e) => e.trim()).filter((e) => e.length > 0)
  for (const entry of entries) {
    const problem = hostPatternProblem(entry)
    if (problem) return `${JSON.stringify(entry)} ${problem}`
  }
  return [...new Set(entries)]
}

const allowHostsConfig = Config.option(Config.string("PYRO_ALLOW_HOSTS").pipe(Config.mapOrFail((value) => {
  const parsed = parseAllowHosts(value)
  return typeof parsed === "string"
    ? Either.left(ConfigError.InvalidData(["PYRO_ALLOW_HOSTS"], parsed))
    : Either.right(parsed)
})))

const guestDnsConfig = Config.option(Config.string("PYRO_GUEST_DNS").pipe(Config.validate({
  message: "must be an IPv4 address",
  validation: (value) => Net.isIPv4(value)
})))

export const make = Effect.gen(function*() {
  return PyroConfig.of({
    cacheDir: yield* baseDir("PYRO_CACHE_DIR", "XDG_CACHE_HOME", ".cache"),
    stateDir: yield* baseDir("PYRO_STATE_DIR", "XDG_STATE_HOME", ".local/state"),
    kernelPath: Option.map(yield* optionalString("PYRO_KERNEL"), (p) => Path.resolve(p)),
    kernelModulesDir: Option.map(yield* optionalString("PYRO_KERNEL_MODULES"), (p) => Path.resolve(p)),
    accel: yield* Config.literal("auto", "kvm", "tcg")("PYRO_ACCEL").pipe(
      Config.withDefault<AccelPreference>("auto")
    ),
    qemuBinary: yield* Config.string("PYRO_QEMU").pipe(Config.withDefault("qemu-system-x86_64")),
    bootTimeoutMs: (yield* Config.number("PYRO_BOOT_TIMEOUT_SECONDS").pipe(Config.withDefault(60))) * 1000,
    maxOutputBytes: yield* Config.integer("PYRO_MAX_OUTPUT_BYTES").pipe(Config.withDefault(16 * 1024 * 1024)),
    outputBudgetBytes: clampOutputBudget(
      yield* Config.integer("PYRO_OUTPUT_BUDGET_BYTES").pipe(Config.withDefault(DEFAULT_OUTPUT_BUDGET_BYTES))
    ),
    scratchMib: yield* Config.integer("PYRO_SCRATCH_MIB").pipe(Config.withDefault(8192)),
    maxActiveVms: yield* Config.integer("PYRO_MAX_ACTIVE_VMS").pipe(Config.withDefault(DEFAULT_MAX_ACTIVE_VMS)),
    spares: clampSpares(yield* Config.integer("PYRO_SPARES").pipe(Config.withDefault(0))),
    spareIdleSeconds: Math.max(1, yield* Config.integer("PYRO_SPARE_IDLE_SECONDS").pipe(Config.withDefault(600))),
    registry: yield* Config.option(Config.nonEmptyString("PYRO_REGISTRY")),
    templates: !(yield* Config.boolean("PYRO_COLD_BOOT").pipe(Config.withDefault(false))),
    // Set but empty means no roots at all (the operator turning caller imports off).
    importRoots: Option.match(yield* Config.option(Config.string("PYRO_IMPORT_ROOTS")), {
      onNone: () => defaultImportRoots(),
      onSome: (value) => parseImportRoots(value)
    }),
    allowHosts: yield* allowHostsConfig,
    guestDns: yield* guestDnsConfig
  })
})

/**
 * The variables that make another pyro process (a spare filler) see what this
 * one sees: the same directories, QEMU, kernel, disks and spare lifetime, even
 * where this process's config came from options rather than the environment.
 */
export const configEnv = (config: PyroConfig["Type"]): Record<string, string> => ({
  PYRO_STATE_DIR: config.stateDir,
  PYRO_CACHE_DIR: config.cacheDir,
  PYRO_ACCEL: config.accel,
  PYRO_QEMU: config.qemuBinary,
  PYRO_BOOT_TIMEOUT_SECONDS: String(config.bootTimeoutMs / 1000),
  PYRO_SCRATCH_MIB: String(config.scratchMib),
  PYRO_COLD_BOOT: config.templates ? "0" : "1",
  PYRO_SPARE_IDLE_SECONDS: String(config.spareIdleSeconds),
  ...Option.match(config.kernelPath, { onNone: () => ({}), onSome: (p) => ({ PYRO_KERNEL: p }) }),
  ...Option.match(config.kernelModulesDir, { onNone: () => ({}), onSome: (p) => ({ PYRO_KERNEL_MODULES: p }) })
})

export const PyroConfigLive = Layer.effect(PyroConfig, make)

/** For tests and the SDK: fixed values over the defaults. */
export const layerWith = (overrides: Partial<PyroConfig["Type"]>) =>
  Layer.effect(PyroConfig, Effect.map(make, (base) => PyroConfig.of({ ...base, ...overrides })))

