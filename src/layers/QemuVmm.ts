import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import { captureServices } from "./captureServices.js"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { makeScratchImage } from "../environment/ext4.js"
import { installHint } from "../host/systemTools.js"
import { which } from "../host/which.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { installDirectory } from "../host/files.js"
import { Progress, report } from "../services/Progress.js"
import {
  type BootSpec,
  type DetachedOptions,
  FRESH_VM_TEMPLATE,
  type RunningVm,
  type TemplateKind,
  type TemplateReport,
  type TemplateStatus,
  Vmm
} from "../services/Vmm.js"
import { decideAccel, hostTscKhz, probeKvm } from "../vm/accel.js"
import { BootError, GuestChannelError } from "../vm/errors.js"
import { connectAgent } from "../vm/agentConnection.js"
import { runCommand } from "../vm/execCommand.js"
import { runHostCommand } from "../host/command.js"
import { qemuArgs, SCRATCH_SERIAL } from "../vm/qemu/args.js"
import { describeExit, killGroup, type ProcessExit, spawnVmm, type VmmLifetime } from "../vm/qemu/process.js"
import { processStartTime } from "../vm/procfs.js"
import { awaitMigration, connectQmp } from "../vm/qemu/qmp.js"
import { capConsole, consoleTail } from "../vm/qemu/console.js"
import { awaitEgress, egressDir, jailed, prepareEgress } from "../vm/network/egress.js"
import {
  encodeTemplateManifest,
  qemuIdentity,
  readTemplate,
  recentTemplateFailure,
  recordTemplateFailure,
  staleBecause,
  TEMPLATE_FORMAT,
  TEMPLATE_VM_PREFIX,
  type TemplateInputs,
  templateKey,
  type TemplatePaths,
  templatePaths,
  templatesFor,
  templatesRoot
} from "../vm/template.js"
import { sweepOrphans } from "../vm/sweep.js"
import { qemuExecutable } from "../vm/vmmIdentity.js"
import { makeEphemeralDir, type VmPaths, writeEphemeralRecord } from "../vm/vmDir.js"

const CONSOLE_TAIL_BYTES = 4096
/** A restore either answers quickly or is abandoned for a cold boot. */
const RESTORE_TIMEOUT_MS = 10_000
/**
 * Run once in an attached template before it is saved, so that its clones find
 * the shell, libc and the exec path already in the guest's page cache.
 */
const WARM_UP_COMMAND = ["sh", "-c", "true"] as const

/** How a VM starts: booted, restored from a template, or booted to make one (RAM into `ram`). */
type Start =
  | { readonly _tag: "cold" }
  | { readonly _tag: "restore"; readonly template: TemplatePaths; readonly attached: boolean }
  | { readonly _tag: "snapshot"; readonly ram: string }

/** QEMU's exec: migration URIs go through /bin/sh. */
const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

const consoleTailOf = (path: string) => consoleTail(path, CONSOLE_TAIL_BYTES)

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor, Progress)
  const fs = yield* FileSystem.FileSystem
  const accel = decideAccel(yield* probeKvm, config.accel)
  const tscKhz = yield* hostTscKhz
  const vmmExecutable = qemuExecutable(config.qemuBinary)
  yield* sweepOrphans(config.stateDir, vmmExecutable).pipe(Effect.ignore)

  const createScratch = (paths: VmPaths) =>
    Effect.gen(function*() {
      // Sparse: the VM pays only for blocks it writes.
      yield* fs.writeFile(paths.scratch, new Uint8Array())
      yield* fs.truncate(paths.scratch, BigInt(config.scratchMib) * 1024n * 1024n)
    }).pipe(Effect.mapError((e) => new BootError({ stage: "Prepare", detail: `scratch disk: ${e.message}` })))

  /** A sparse copy: only the blocks the template's guest wrote (a few MB of an 8 GiB disk). */
  const copyScratch = (from: string, to: string) =>
    runHostCommand("cp", ["--sparse=always", "--reflink=auto", "--", from, to]).pipe(
      Effect.zipRight(Effect.try(() => Fs.chmodSync(to, 0o600))),
      Effect.mapError((e) => new BootError({ stage: "Prepare", detail: `scratch disk from the template: ${e.message}` }))
    )

  const unavailable = Effect.sync(() =>
    which(config.qemuBinary)
      ? Option.none<string>()
      : Option.some(`${config.qemuBinary} not found; install Debian's qemu-system-x86 (${installHint("qemu-system-x86_64")})`)
  )

  const qemuPresent = Effect.flatMap(unavailable, Option.match({
    onNone: () => Effect.void,
    onSome: (detail) => Effect.fail(new BootError({ stage: "Spawn", detail }))
  }))

  /** Run `boot` in a scope of its own, closed (killing what it started) if it fails, so another try can follow. */
  const attempt = <A, E, R>(boot: Effect.Effect<A, E, R | Scope.Scope>) =>
    Effect.gen(function*() {
      const child = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      return yield* boot.pipe(Scope.extend(child), Effect.onError(() => Scope.close(child, Exit.void)))
    })

  /** From the template when there is one (made first if need be), else cold; a failed restore falls back to cold. */
  const startVm = (spec: BootSpec, paths: VmPaths, lifetime: VmmLifetime, format: { readonly journal: boolean } | undefined) =>
    Effect.gen(function*() {
      // A fresh scratch disk can be the attached template's; one holding files needs attach.
      const kind: TemplateKind = format ? { stage: "attached", journal: format.journal } : { stage: "boot" }
      const template = yield* ensureTemplate(spec, kind)
      if (template.paths) {
        const restored = yield* Effect.either(attempt(boot(spec, paths, lifetime, format, {
          _tag: "restore",
          template: template.paths,
          attached: kind.stage === "attached"
        })))
        if (restored._tag === "Right") return restored.right
        // Killed from outside (shutdown) says nothing about the template.
        if (/killed by SIGKILL/.test(restored.left.message)) return yield* Effect.fail(restored.left)
        // One clear warning. A failure of this VM's own files (its scratch copy: a full or
        // read-only state directory) leaves the template to other starts; any other failure
        // is the template's, which goes: the next start makes a new one.
        yield* report({
          scope: "boot",
          phase: "template-fallback",
          fields: { vm: spec.id, reason: JSON.stringify(restored.left.message.split("\n")[0]) }
        })
        if (restored.left.stage !== "Prepare") {
          yield* Effect.sync(() => Fs.rmSync(template.paths!.dir, { recursive: true, force: true }))
        }
      }
      return yield* attempt(boot(spec, paths, lifetime, format, { _tag: "cold" }))
    })

  const bootEphemeral = (spec: BootSpec) =>
    Effect.gen(function*() {
      yield* qemuPresent
      const paths = yield* makeEphemeralDir(config.stateDir, spec.id, spec.channels)
      return yield* startVm(spec, paths, { _tag: "ephemeral" }, { journal: false })
    }).pipe(
      Effect.provide(context),
      Effect.withSpan("Vmm.bootEphemeral", { attributes: { id: spec.id } })
    )

  /**
   * Boot a VM that outlives this process in `paths.dir` (which the caller
   * owns), attach it, and let go of it. A boot that fails kills what it started.
   */
  const bootDetached = (spec: BootSpec, paths: VmPaths, options: DetachedOptions) =>
    Effect.scoped(Effect.gen(function*() {
      yield* qemuPresent
      const vm = yield* startVm(
        spec,
        paths,
        { _tag: "detached", stderrFile: `${paths.dir}/qemu.log`, dieWithParent: options.dieWithParent },
        options.formatScratch ? { journal: options.journaledScratch } : undefined
      )
      yield* vm.attach
      const startTime = processStartTime(vm.pid)
      if (startTime === undefined) {
        return yield* new BootError({ stage: "Kernel", detail: "QEMU exited right after the guest attached" })
      }
      return { pid: vm.pid, startTime, bootMs: vm.bootMs, accel: vm.accel, start: vm.start }
    })).pipe(
      Effect.provide(context),
      Effect.withSpan("Vmm.bootDetached", { attributes: { id: spec.id } })
    )

  /** `format`: make a fresh scratch disk (a journal for disks that must survive a crash of QEMU). */
  const boot = (
    spec: BootSpec,
    paths: VmPaths,
    lifetime: VmmLifetime,
    format: { readonly journal: boolean } | undefined,
    start: Start
  ) =>
    Effect.gen(function*() {
      // The file exists at its full size before QEMU opens it (it sizes the disk at start-up);
      // formatting runs while QEMU boots, as the guest first touches the disk at attach.
      // A clone of an attached template instead gets the template's disk, which its RAM has mounted.
      const clonesScratch = start._tag === "restore" && start.attached
      if (clonesScratch) yield* copyScratch(start.template.scratch, paths.scratch)
      else if (format) yield* createScratch(paths)
      const formatting = format && !clonesScratch
        ? yield* makeScratchImage(paths.scratch, config.scratchMib, format.journal).pipe(
          Effect.mapError((e) => new BootError({ stage: "Prepare", detail: `scratch disk: ${e.message}` })),
          Effect.forkScoped
        )
        : yield* Effect.forkScoped(Effect.void)
      const started = Date.now()
      // With network, QEMU runs in a namespace whose only way out is public (egress.ts).
      const netDir = egressDir(paths.dir)
      if (spec.network) yield* prepareEgress(netDir)
      const jail = (argv: ReadonlyArray<string>) => (spec.network ? jailed(netDir, argv) : argv)
      const proc = yield* spawnVmm(
        jail([config.qemuBinary, ...qemuArgs({
          name: `pyro-${spec.id}`,
          accel: accel.accel,
          vcpus: spec.vcpus,
          memMib: spec.memMib,
          kernel: spec.kernel,
          initrd: spec.initrd,
          rootImage: spec.rootImage,
          scratchImage: paths.scratch,
          channelSocket: paths.channelSocket,
          channels: spec.channels ?? 1,
          qmpSocket: paths.qmpSocket,
          consoleLog: paths.consoleLog,
          network: spec.network,
          tscKhz,
          ...(start._tag === "restore"
            ? { memoryFile: { path: start.template.ram, share: false }, restore: true }
            : {}),
          ...(start._tag === "snapshot" ? { memoryFile: { path: start.ram, share: true } } : {})
        })]),
        lifetime
      )
      if (lifetime._tag === "ephemeral") yield* writeEphemeralRecord(paths, proc.pid)
      // A detached VM that fails to boot is killed here; once booted, its owner stops it.
      if (lifetime._tag === "detached") yield* Effect.addFinalizer((exit) => Exit.isFailure(exit) ? Effect.sync(() => killGroup(proc.pid, "SIGKILL")) : Effect.void)

      const failure = (stage: BootError["stage"], detail: string) =>
        Effect.gen(function*() {
          return new BootError({
            stage,
            detail,
            vmmStderr: yield* proc.stderrTail,
            console: yield* consoleTailOf(paths.consoleLog)
          })
        })

      const vmmDied = (exit: ProcessExit) =>
        Effect.gen(function*() {
          const socketSeen = yield* fs.exists(paths.channelSocket).pipe(Effect.orElseSucceed(() => false))
          const console = yield* consoleTailOf(paths.consoleLog)
          return yield* failure(
            console || socketSeen ? "Kernel" : "Spawn",
            `QEMU ${describeExit(exit)} before the guest agent answered`
          )
        })

      // The first connection lives in its own scope so a caller can let go of it
      // (disconnect) without stopping the VM.
      const connectionScope = yield* Effect.flatMap(Effect.scope, (scope) => Scope.fork(scope, ExecutionStrategy.sequential))
      const handshake = connectAgent(paths.channelSocket).pipe(
        Scope.extend(connectionScope),
        // A channel that breaks because QEMU died is reported as QEMU's death.
        Effect.catchAll((e) =>
          Effect.flatMap(
            Effect.timeoutOption(proc.exited, "1 second"),
            Option.match({
              onSome: (exit) => Effect.flatMap(vmmDied(exit), Effect.fail),
              onNone: () => Effect.flatMap(failure("AgentHandshake", e.message), Effect.fail)
            })
          ))
      )
      const died = Effect.flatMap(proc.exited, (exit) => Effect.flatMap(vmmDied(exit), Effect.fail))

      if (start._tag === "restore") {
        // Device state from the template; RAM is already mapped from its file.
        const restore = Effect.scoped(Effect.gen(function*() {
          const qmp = yield* connectQmp(paths.qmpSocket, RESTORE_TIMEOUT_MS)
          yield* qmp.execute("migrate-set-capabilities", {
            capabilities: [{ capability: "x-ignore-shared", state: true }]
          })
          yield* qmp.execute("migrate-incoming", { uri: `exec:cat ${shellQuote(start.template.state)}` })
          yield* awaitMigration(qmp, "migrate-incoming", RESTORE_TIMEOUT_MS)
          yield* qmp.execute("cont")
        })).pipe(Effect.catchAll((e) => Effect.flatMap(failure("Restore", e.message), Effect.fail)))
        yield* Effect.raceFirst(restore, died)
      }

      const timeoutMs = start._tag === "restore"
        ? Math.min(RESTORE_TIMEOUT_MS, spec.timeoutMs ?? config.bootTimeoutMs)
        : spec.timeoutMs ?? config.bootTimeoutMs
      const answered = yield* Effect.raceFirst(handshake, died).pipe(Effect.timeoutOption(timeoutMs))
      if (Option.isNone(answered)) {
        return yield* Effect.flatMap(
          failure(
            "Timeout",
            `the guest agent did not answer within ${Math.round(timeoutMs / 1000)}s (accelerator: ${accel.accel})`
          ),
          Effect.fail
        )
      }
      const connection = answered.value
      // Done while the guest booted; a VM is handed out only with its network working.
      if (spec.network) yield* Effect.raceFirst(awaitEgress(netDir), died)
      const bootMs = Date.now() - started

      const identity = () => ({ realtimeNs: BigInt(Date.now()) * 1_000_000n, entropy: randomBytes(64), hostname: `pyro-${spec.id}` })
      const attach = Effect.gen(function*() {
        yield* Fiber.join(formatting)
        yield* (clonesScratch
          ? connection.refresh(identity())
          : connection.attach({ scratchSerial: SCRATCH_SERIAL, ...identity() })).pipe(
            Effect.catchAll((e) => Effect.flatMap(failure("Attach", e.message), Effect.fail))
          )
        // From here on the environment's code runs: its console output goes to a bounded ring.
        yield* capConsole(paths.qmpSocket).pipe(
          Effect.catchAll((e) => Effect.flatMap(failure("Attach", `bounding the console: ${e.message}`), Effect.fail))
        )
      })

      return {
        id: spec.id,
        pid: proc.pid,
        channelSocket: paths.channelSocket,
        disconnect: Scope.close(connectionScope, Exit.void),
        accel: accel.accel,
        hello: connection.hello,
        connection,
        bootMs,
        start: start._tag === "restore" ? "restored" as const : "cold" as const,
        exited: proc.exited,
        attach
      } satisfies RunningVm
    })

  const qemu = qemuIdentity(which(config.qemuBinary))

  const templateInputs = (spec: BootSpec, kind: TemplateKind): TemplateInputs | undefined =>
    spec.template && {
      format: TEMPLATE_FORMAT,
      environment: spec.template.environment,
      root_digest: spec.template.rootDigest,
      boot_digest: spec.template.bootDigest,
      vcpus: spec.vcpus,
      mem_mib: spec.memMib,
      scratch_mib: config.scratchMib,
      stage: kind.stage,
      scratch_journal: kind.stage === "attached" && kind.journal,
      network: spec.network,
      ...((spec.channels ?? 1) > 1 ? { channels: spec.channels } : {}),
      accel: accel.accel,
      qemu
    }

  /**
   * Boot a VM in `aside` to the template's stage (the agent's handshake, or
   * attach plus one warm-up command), pause it, and save its device state
   * (and, once attached, its scratch disk) there.
   */
  const makeTemplate = (spec: BootSpec, inputs: TemplateInputs, aside: string) =>
    Effect.scoped(Effect.gen(function*() {
      const tpl = templatePaths(aside)
      const id = `${TEMPLATE_VM_PREFIX}${randomBytes(5).toString("hex")}`
      const paths = yield* makeEphemeralDir(config.stateDir, id, spec.channels)
      const attached = inputs.stage === "attached"
      if (!attached) yield* createScratch(paths)
      const vm = yield* boot({ ...spec, id }, paths, { _tag: "ephemeral" }, attached ? { journal: inputs.scratch_journal } : undefined, {
        _tag: "snapshot",
        ram: tpl.ram
      })
      if (attached) {
        yield* vm.attach
        // Best effort: an image without sh still makes a template, only a less warm one.
        yield* runCommand(vm.connection, { command: WARM_UP_COMMAND, cwd: "/", timeoutSeconds: 30, maxOutputBytes: 4096 }).pipe(
          Effect.ignore
        )
      }
      // Saved while no host is connected: clones wait for theirs.
      yield* vm.disconnect
      const qmp = yield* connectQmp(paths.qmpSocket, RESTORE_TIMEOUT_MS)
      yield* qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] })
      yield* qmp.execute("stop")
      yield* qmp.execute("migrate", { uri: `exec:cat > ${shellQuote(tpl.state)}` })
      yield* awaitMigration(qmp, "migrate", 60_000)
      // Stopped, so the disk is what the saved RAM has mounted.
      if (attached) yield* copyScratch(paths.scratch, tpl.scratch)
      // Failures here are errors (the VM then boots cold), never defects.
      yield* Effect.try(() => {
        const state = Fs.readFileSync(tpl.state)
        for (const file of attached ? [tpl.ram, tpl.state, tpl.scratch] : [tpl.ram, tpl.state]) Fs.chmodSync(file, 0o444)
        Fs.writeFileSync(tpl.manifest, encodeTemplateManifest({
          inputs,
          created_at: new Date().toISOString(),
          ram_file: "ram",
          state_file: "state",
          ...(attached ? { scratch_file: "scratch" as const } : {}),
          state_bytes: state.byteLength,
          state_sha256: createHash("sha256").update(state).digest("hex"),
          boot_ms: vm.bootMs
        }))
      })
    })).pipe(Effect.mapError((e) => new BootError({ stage: "Template", detail: e.message })))

  // One template build per key at a time in this process; installDirectory keeps processes apart.
  const templateLocks = new Map<string, Effect.Semaphore>()
  const lockTemplate = (key: string) => {
    let lock = templateLocks.get(key)
    if (!lock) templateLocks.set(key, (lock = Effect.unsafeMakeSemaphore(1)))
    return lock.withPermits(1)
  }

  const ensureTemplate = (spec: BootSpec, kind: TemplateKind) =>
    Effect.gen(function*() {
      const cold = (reason: string) => ({ paths: undefined, status: { state: "cold", key: undefined, dir: undefined, reason, built: false } as TemplateStatus })
      if (!config.templates) return cold("templates are off (PYRO_COLD_BOOT)")
      const inputs = templateInputs(spec, kind)
      if (!inputs) return cold("no template inputs for this VM")
      const key = templateKey(inputs)
      const dir = `${templatesRoot(config.cacheDir)}/${key}`
      return yield* lockTemplate(key)(Effect.gen(function*() {
        const found = readTemplate(dir)
        if (found) return { paths: found.paths, status: { state: "warm", key, dir, reason: undefined, built: false } as TemplateStatus }
        // A template that could not be made just now is not tried again at every start.
        const failedBefore = recentTemplateFailure(dir, Date.now())
        if (failedBefore) return cold(`could not make a template ${failedBefore.ago}: ${failedBefore.reason}`)
        yield* report({ scope: "boot", phase: "template", fields: { environment: inputs.environment, key } })
        yield* Effect.ignore(Effect.try(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const made = yield* Effect.either(installDirectory(dir, (aside) => makeTemplate(spec, inputs, aside)))
        const ready = readTemplate(dir)
        if (made._tag === "Left" || !ready) {
          const reason = made._tag === "Left" ? made.left.message.split("\n")[0]! : "incomplete after install"
          yield* report({ scope: "boot", phase: "template-failed", fields: { environment: inputs.environment, reason: JSON.stringify(reason) } })
          // Not for a start cut short from outside (shutdown, Ctrl-C), which says nothing about the template.
          if (!/killed by SIGKILL/.test(reason)) recordTemplateFailure(dir, reason)
          return cold(`could not make a template: ${reason}`)
        }
        return { paths: ready.paths, status: { state: "warm", key, dir, reason: undefined, built: true } as TemplateStatus }
      }))
    })

  const templateReport = (spec: BootSpec, kind: TemplateKind = FRESH_VM_TEMPLATE) =>
    Effect.sync((): TemplateReport => {
      if (!config.templates) return { state: "cold", key: undefined, reasons: ["templates are off (PYRO_COLD_BOOT)"] }
      const inputs = templateInputs(spec, kind)
      if (!inputs) return { state: "cold", key: undefined, reasons: ["no template inputs"] }
      const key = templateKey(inputs)
      if (readTemplate(`${templatesRoot(config.cacheDir)}/${key}`)) return { state: "warm", key, reasons: [] }
      // Only templates of the same kind: a workspace template is not a stale VM template.
      const others = templatesFor(config.cacheDir, inputs.environment).filter((o) =>
        o.manifest.inputs.stage === inputs.stage && o.manifest.inputs.scratch_journal === inputs.scratch_journal
      )
      if (others.length > 0) {
        return { state: "stale", key, reasons: [...new Set(others.flatMap((o) => staleBecause(o.manifest.inputs, inputs)))] }
      }
      return { state: "cold", key, reasons: ["no template yet: made on first use, or now with `pyro prepare`"] }
    })

  const prepareTemplate = (spec: BootSpec, kind: TemplateKind = FRESH_VM_TEMPLATE) =>
    Effect.map(ensureTemplate(spec, kind), (t) => t.status).pipe(Effect.provide(context))

  const connect = (channelSocket: string, timeoutMs: number) =>
    connectAgent(channelSocket).pipe(
      Effect.timeoutFail({
        duration: timeoutMs,
        onTimeout: () =>
          new GuestChannelError({ reason: "Unresponsive", detail: `no answer on ${channelSocket} within ${timeoutMs} ms` })
      })
    )

  return Vmm.of({ accel, vmmExecutable, unavailable, bootEphemeral, bootDetached, prepareTemplate, templateReport, connect })
})

export const QemuVmmLive = Layer.effect(Vmm, make)
