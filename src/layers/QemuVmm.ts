import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { collectYoungGarbage } from "../host/idleGc.js"
import { installHint } from "../host/systemTools.js"
import { which } from "../host/which.js"
import { Progress, report } from "../services/Progress.js"
import { PyroConfig } from "../services/PyroConfig.js"
import {
  type BootSpec,
  type DetachedOptions,
  type EphemeralOptions,
  FRESH_VM_TEMPLATE,
  type RunningVm,
  type TemplateKind,
  Vmm
} from "../services/Vmm.js"
import { decideAccel, hostTscKhz, probeKvm } from "../vm/accel.js"
import { connectAgent, connectAgentWithin } from "../vm/agentConnection.js"
import { BootError } from "../vm/errors.js"
import { allowProxyCommand, awaitEgress, egressDir, jailed, prepareEgress } from "../vm/network/egress.js"
import { processStartTime } from "../vm/procfs.js"
import { qemuArgs, SCRATCH_SERIAL } from "../vm/qemu/args.js"
import { capConsole, consoleTail, ringTail } from "../vm/qemu/console.js"
import { adoptVmm, describeExit, type ProcessExit, spawnVmm, vmmCommand, type VmmLifetime } from "../vm/qemu/process.js"
import { connectQmp } from "../vm/qemu/qmp.js"
import { restoreSnapshot, restoringRamFrom, savingRamTo } from "../vm/qemu/snapshot.js"
import { copyRam, emptyRam, RAM_DIR, sweepOrphanRam } from "../vm/ramFile.js"
import { copyScratch, createScratch, formatScratch, scratchCopyCommand } from "../vm/scratch.js"
import { scratchImageArgs } from "../environment/ext4.js"
import { type HeadStart, inputsUnchanged, sameRecipe, type StartedVm, type StartRecipe, writePlan } from "../vm/headStart/recipe.js"
import { sweepOrphans } from "../vm/sweep.js"
import { withoutHugePages } from "../vm/qemu/hugePages.js"
import { runCommand } from "../vm/execCommand.js"
import { reapIdleSpares } from "../vm/spares/store.js"
import { makeTemplateCache, restoreFailureBlame } from "../vm/templateCache.js"
import { makeEphemeralDir, type VmPaths, writeEphemeralRecord } from "../vm/vmDir.js"
import { qemuExecutable } from "../vm/vmmIdentity.js"
import { captureServices } from "./captureServices.js"

const CONSOLE_TAIL_BYTES = 4096
/** A restore either answers quickly or is abandoned for a cold boot. */
const RESTORE_TIMEOUT_MS = 10_000

/**
 * How a VM starts: booted cold; restored from a snapshot's RAM and device
 * state (a template's), on a copy of its scratch disk if it was taken after
 * attach; or booted with its RAM in `ram`, to be saved (a template made).
 */
type Start =
  | { readonly _tag: "cold" }
  /** A running VM's device state, its RAM in `paths.ram` already (a fork): restored as it was, attached already. */
  | { readonly _tag: "resume"; readonly state: string }
  | { readonly _tag: "restore"; readonly ram: string; readonly state: string; readonly scratch: string | undefined }
  | { readonly _tag: "snapshot"; readonly ram: string }

const consoleTailOf = (path: string) => consoleTail(path, CONSOLE_TAIL_BYTES)

/**
 * The head start's QEMU, taken over, if it is the one this start would spawn: this VM's
 * id, the same recipe, the same input files, and still running. Otherwise it is killed
 * (and waited for: this start reuses its directory) and the start goes on as usual.
 */
const takeOverHeadStart = (headStart: HeadStart, id: string, recipe: StartRecipe) =>
  Effect.gen(function*() {
    const started = headStart.started
    if (started && started.id === id && sameRecipe(started.recipe, recipe) && inputsUnchanged(started.inputs)) {
      const taken = yield* adoptVmm(headStart)
      if (taken) return taken
    }
    yield* Effect.promise(headStart.discard)
    return undefined
  })

/** The head start's mkfs, as formatScratch would have failed. */
const awaitHeadStartFormat = (started: StartedVm) =>
  Effect.flatMap(Effect.promise(() => started.formatted ?? Promise.resolve(0)), (code) =>
    code === 0
      ? Effect.void
      : Effect.fail(new BootError({ stage: "Prepare", detail: `scratch disk: mkfs.ext4 ${code === null ? "did not run to its end" : `exited with status ${code}`}` })))

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor, Progress)
  const fs = yield* FileSystem.FileSystem
  const accel = decideAccel(yield* probeKvm, config.accel)
  const tscKhz = yield* hostTscKhz
  const vmmExecutable = qemuExecutable(config.qemuBinary)
  yield* sweepOrphans(config.stateDir, vmmExecutable).pipe(Effect.ignore)
  yield* sweepOrphanRam(RAM_DIR)
  yield* reapIdleSpares(config, vmmExecutable)

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
  const startVm = (
    spec: BootSpec,
    paths: VmPaths,
    lifetime: VmmLifetime,
    format: { readonly journal: boolean } | undefined,
    headStart?: HeadStart
  ) =>
    Effect.gen(function*() {
      // A fresh scratch disk can be the attached template's; one holding files needs attach.
      const kind: TemplateKind = format ? { stage: "attached", journal: format.journal } : { stage: "boot" }
      const template = yield* templates.ensure(spec, kind)
      if (template.paths) {
        const restored = yield* Effect.either(attempt(boot(spec, paths, lifetime, format, {
          _tag: "restore",
          ram: template.paths.ram,
          state: template.paths.state,
          scratch: kind.stage === "attached" ? template.paths.scratch : undefined
        }, headStart)))
        if (restored._tag === "Right") return restored.right
        const blame = restoreFailureBlame(restored.left)
        if (blame === "outside") return yield* Effect.fail(restored.left)
        // One clear warning; a template at fault goes, and the next start makes a new one.
        yield* report({
          scope: "boot",
          phase: "template-fallback",
          fields: { vm: spec.id, reason: JSON.stringify(restored.left.message.split("\n")[0]) }
        })
        if (blame === "template") yield* templates.discard(template.paths)
      }
      return yield* attempt(boot(spec, paths, lifetime, format, { _tag: "cold" }, headStart))
    })

  const bootEphemeral = (spec: BootSpec, options: EphemeralOptions = {}) =>
    Effect.gen(function*() {
      yield* qemuPresent
      const headStarted = options.headStart?.started
      const paths = yield* makeEphemeralDir(config.stateDir, spec.id, spec.channels, headStarted?.id === spec.id ? headStarted.pid : undefined)
      return yield* startVm(spec, paths, { _tag: "ephemeral" }, { journal: false }, options.headStart)
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
      const lifetime: VmmLifetime = { _tag: "detached", stderrFile: `${paths.dir}/qemu.log`, dieWithParent: options.dieWithParent }
      if (options.resumeFrom !== undefined && paths.ram === undefined) {
        return yield* new BootError({ stage: "Prepare", detail: "a VM resumed from a saved state needs its RAM file" })
      }
      const vm = options.resumeFrom !== undefined
        // No template and no cold fallback: the state is the VM.
        ? yield* attempt(boot(spec, paths, lifetime, undefined, { _tag: "resume", state: options.resumeFrom }))
        : yield* startVm(spec, paths, lifetime, options.formatScratch ? { journal: options.journaledScratch } : undefined)
      yield* vm.attach
      if (options.warmUp) {
        yield* runCommand(vm.connection, { command: ["true"], cwd: "/", timeoutSeconds: 30, maxOutputBytes: 1024 }).pipe(
          Effect.catchAll((e) => Effect.fail(new BootError({ stage: "Attach", detail: `the warm-up command: ${e.message}` })))
        )
      }
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
    start: Start,
    headStart?: HeadStart
  ) =>
    Effect.gen(function*() {
      const ramFile = paths.ram
      const clonedScratch = start._tag === "restore" ? start.scratch : undefined
      const clonesScratch = clonedScratch !== undefined
      // Attached already (a clone of an attached template, or a fork): it only needs its own identity.
      const attached = clonesScratch || start._tag === "resume"
      // With network, QEMU runs in a namespace whose only way out is public (egress.ts).
      const netDir = egressDir(paths.dir)
      const jail = (argv: ReadonlyArray<string>) => (spec.network ? jailed(netDir, argv) : argv)
      // Guest RAM in a file: huge pages would only round QEMU's small anonymous blocks up to 2 MiB.
      const ramInFile = start._tag !== "cold" || ramFile !== undefined
      const vmmArgv = (argv: ReadonlyArray<string>) => (ramInFile ? withoutHugePages(argv) : argv)
      const argv = jail(vmmArgv([config.qemuBinary, ...qemuArgs({
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
        ...(spec.network && spec.allowHosts ? { allowProxy: allowProxyCommand(netDir) } : {}),
        tscKhz,
        ...(start._tag === "restore" ? restoringRamFrom(start.ram) : {}),
        ...(start._tag === "resume" ? { restore: true } : {}),
        // Its own file, shared: what the guest writes lands there (and a fork copies it).
        ...(ramFile !== undefined && start._tag !== "snapshot" ? { memoryFile: { path: ramFile, share: true } } : {}),
        ...(start._tag === "snapshot" ? savingRamTo(start.ram) : {})
      })]))
      // A one-shot run's start as a recipe, for a head start: one with a fresh scratch disk, no RAM file, no network.
      const recipe: StartRecipe | undefined = headStart && lifetime._tag === "ephemeral" && format && ramFile === undefined &&
          !spec.network && (start._tag === "cold" || start._tag === "restore")
        ? {
          scratch: clonesScratch
            ? { _tag: "copy", command: scratchCopyCommand(clonedScratch, paths.scratch) }
            : { _tag: "create", path: paths.scratch, bytes: config.scratchMib * 1024 * 1024 },
          format: clonesScratch ? undefined : ["mkfs.ext4", ...scratchImageArgs(paths.scratch, config.scratchMib, format.journal)],
          vmm: vmmCommand(argv, lifetime),
          inputs: start._tag === "restore"
            ? [start.ram, start.state, spec.rootImage, ...(clonedScratch !== undefined ? [clonedScratch] : [])]
            : [spec.kernel, spec.initrd, spec.rootImage]
        }
        : undefined
      const early = recipe && headStart ? yield* takeOverHeadStart(headStart, spec.id, recipe) : undefined

      // The file exists at its full size before QEMU opens it (it sizes the disk at start-up);
      // formatting runs while QEMU boots, as the guest first touches the disk at attach.
      // A clone of an attached template instead gets the template's disk, which its RAM has mounted.
      // A VM with a RAM file of its own starts it as the template's RAM (a copy of what
      // the template touched), or empty; a fork's was copied from its source.
      // A head start made the scratch disk already.
      if (ramFile !== undefined && start._tag === "restore") yield* copyRam(start.ram, ramFile)
      else if (ramFile !== undefined && start._tag === "cold") yield* emptyRam(ramFile, spec.memMib)
      if (early === undefined && clonesScratch) yield* copyScratch(clonedScratch, paths.scratch)
      else if (early === undefined && format) yield* createScratch(paths.scratch, config.scratchMib)
      const formatting = yield* Effect.forkScoped(
        early
          ? awaitHeadStartFormat(early.started)
          : format && !clonesScratch
          ? formatScratch(paths.scratch, config.scratchMib, format.journal)
          : Effect.void
      )
      const started = early?.started.spawnedAt ?? Date.now()
      if (spec.network) {
        yield* prepareEgress(netDir, { allowHosts: spec.allowHosts, dns: Option.getOrUndefined(config.guestDns) })
      }
      const proc = early ? early.proc : yield* spawnVmm(argv, lifetime)
      if (lifetime._tag === "ephemeral") yield* writeEphemeralRecord(paths, proc.pid)
      // A detached VM that fails to boot is killed here, and waited for: a cold boot may follow on
      // the same disk, which QEMU holds locked until it is gone. Once booted, its owner stops it.
      if (lifetime._tag === "detached") yield* Effect.addFinalizer((exit) => Exit.isFailure(exit) ? proc.abandon : Effect.void)

      /** `laterConsole`: what the guest wrote after the console left its file (the ring's tail). */
      const failure = (stage: BootError["stage"], detail: string, vmmExit?: ProcessExit, laterConsole = "") =>
        Effect.gen(function*() {
          return new BootError({
            stage,
            detail,
            vmmStderr: yield* proc.stderrTail,
            console: ((yield* consoleTailOf(paths.consoleLog)) + laterConsole).slice(-CONSOLE_TAIL_BYTES),
            ...(vmmExit ? { vmmExit } : {})
          })
        })

      const vmmDied = (exit: ProcessExit) =>
        Effect.gen(function*() {
          const socketSeen = yield* fs.exists(paths.channelSocket).pipe(Effect.orElseSucceed(() => false))
          const console = yield* consoleTailOf(paths.consoleLog)
          return yield* failure(
            console || socketSeen ? "Kernel" : "Spawn",
            `QEMU ${describeExit(exit)} before the guest agent answered`,
            exit
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

      // Until the guest has booted or been restored, this process only waits: the CLI's garbage
      // goes now, not on the way to the result. Forked, so it runs once the restore's QMP
      // exchange or the handshake's connect has started and this fiber waits.
      yield* Effect.forkScoped(Effect.sync(collectYoungGarbage))
      if (start._tag === "restore" || start._tag === "resume") {
        // Device state from the snapshot (or a fork's source); RAM is already mapped from its file.
        const restore = Effect.scoped(Effect.flatMap(
          connectQmp(paths.qmpSocket, RESTORE_TIMEOUT_MS),
          (qmp) => restoreSnapshot(qmp, start.state, RESTORE_TIMEOUT_MS)
        )).pipe(Effect.catchAll((e) => Effect.flatMap(failure("Restore", e.message), Effect.fail)))
        yield* Effect.raceFirst(restore, died)
      }

      const timeoutMs = start._tag !== "cold" && start._tag !== "snapshot"
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
      // This start worked: the next run of its shape may start the same way, ahead of the CLI.
      if (recipe && headStart && !early) writePlan(headStart.planFile, recipe, spec.id)
      // Done while the guest booted; a VM is handed out only with its network working.
      if (spec.network) yield* Effect.raceFirst(awaitEgress(netDir), died)
      const bootMs = Date.now() - started

      const identity = () => ({ realtimeNs: BigInt(Date.now()) * 1_000_000n, entropy: randomBytes(64), hostname: `pyro-${spec.id}` })
      const attach = Effect.gen(function*() {
        yield* Fiber.join(formatting)
        // After attach the environment's code runs: its console output goes to a bounded ring.
        // Attach itself runs only the agent (mounts, clock, hostname), so the two overlap:
        // a QMP round trip less on every start.
        const bounding = yield* Effect.fork(Effect.either(capConsole(paths.qmpSocket)))
        const personalised = yield* Effect.either(
          attached ? connection.refresh(identity()) : connection.attach({ scratchSerial: SCRATCH_SERIAL, ...identity() })
        )
        const bound = yield* Fiber.join(bounding)
        if (Either.isLeft(personalised)) {
          // What the kernel and the agent said while attaching is in the ring if it was in place by then.
          const ring = Either.isRight(bound) ? yield* ringTail(paths.qmpSocket, CONSOLE_TAIL_BYTES) : ""
          return yield* Effect.flatMap(failure("Attach", personalised.left.message, undefined, ring), Effect.fail)
        }
        if (Either.isLeft(bound)) {
          return yield* Effect.flatMap(failure("Attach", `bounding the console: ${bound.left.message}`), Effect.fail)
        }
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
        start: start._tag === "restore" || start._tag === "resume" ? "restored" as const : "cold" as const,
        exited: proc.exited,
        kill: proc.killNow,
        attach
      } satisfies RunningVm
    })

  // Typed by hand: inferred, boot's requirements and this generator's would depend on each other.
  const templates = yield* makeTemplateCache<FileSystem.FileSystem | CommandExecutor.CommandExecutor | Progress>({
    accel: accel.accel,
    bootForTemplate: (spec, paths, format, ram) => boot(spec, paths, { _tag: "ephemeral" }, format, { _tag: "snapshot", ram })
  })

  const prepareTemplate = (spec: BootSpec, kind: TemplateKind = FRESH_VM_TEMPLATE) =>
    Effect.map(templates.ensure(spec, kind), (t) => t.status).pipe(Effect.provide(context))

  return Vmm.of({
    accel,
    vmmExecutable,
    unavailable,
    bootEphemeral,
    bootDetached,
    prepareTemplate,
    templateReport: templates.report,
    connect: connectAgentWithin
  })
})

export const QemuVmmLive = Layer.effect(Vmm, make)
