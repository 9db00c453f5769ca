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
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { makeScratchImage } from "../environment/ext4.js"
import { which } from "../host/which.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { type BootSpec, type DetachedOptions, type RunningVm, Vmm } from "../services/Vmm.js"
import { decideAccel, hostTscKhz, probeKvm } from "../vm/accel.js"
import { BootError, GuestChannelError } from "../vm/errors.js"
import { connectAgent } from "../vm/agentConnection.js"
import { qemuArgs, SCRATCH_SERIAL } from "../vm/qemu/args.js"
import { describeExit, killGroup, type ProcessExit, spawnVmm, type VmmLifetime } from "../vm/qemu/process.js"
import { processStartTime } from "../vm/procfs.js"
import { sweepOrphans } from "../vm/sweep.js"
import { makeEphemeralDir, type VmPaths, writeEphemeralRecord } from "../vm/vmDir.js"

const CONSOLE_TAIL_BYTES = 4096

const consoleTail = (path: string) =>
  Effect.sync(() => {
    try {
      const text = Fs.readFileSync(path, "utf8")
      return text.slice(-CONSOLE_TAIL_BYTES)
    } catch {
      return ""
    }
  })

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor)
  const fs = yield* FileSystem.FileSystem
  const accel = decideAccel(yield* probeKvm, config.accel)
  const tscKhz = yield* hostTscKhz
  yield* sweepOrphans(config.stateDir).pipe(Effect.ignore)

  const createScratch = (paths: VmPaths) =>
    Effect.gen(function*() {
      // Sparse: the VM pays only for blocks it writes.
      yield* fs.writeFile(paths.scratch, new Uint8Array())
      yield* fs.truncate(paths.scratch, BigInt(config.scratchMib) * 1024n * 1024n)
    }).pipe(Effect.mapError((e) => new BootError({ stage: "Prepare", detail: `scratch disk: ${e.message}` })))

  const qemuPresent = Effect.suspend(() =>
    which(config.qemuBinary) ? Effect.void : Effect.fail(
      new BootError({
        stage: "Spawn",
        detail: `${config.qemuBinary} not found; install Debian's qemu-system-x86 (sudo apt-get install qemu-system-x86)`
      })
    )
  )

  const bootEphemeral = (spec: BootSpec) =>
    Effect.gen(function*() {
      yield* qemuPresent
      const paths = yield* makeEphemeralDir(config.stateDir, spec.id)
      return yield* boot(spec, paths, { _tag: "ephemeral" }, { journal: false })
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
      const vm = yield* boot(
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
      return { pid: vm.pid, startTime, bootMs: vm.bootMs, accel: vm.accel }
    })).pipe(
      Effect.provide(context),
      Effect.withSpan("Vmm.bootDetached", { attributes: { id: spec.id } })
    )

  /** `format`: make a fresh scratch disk (a journal for disks that must survive a crash of QEMU). */
  const boot = (spec: BootSpec, paths: VmPaths, lifetime: VmmLifetime, format: { readonly journal: boolean } | undefined) =>
    Effect.gen(function*() {
      // The file exists at its full size before QEMU opens it (it sizes the disk at start-up);
      // formatting runs while QEMU boots, as the guest first touches the disk at attach.
      if (format) yield* createScratch(paths)
      const formatting = format
        ? yield* makeScratchImage(paths.scratch, config.scratchMib, format.journal).pipe(
          Effect.mapError((e) => new BootError({ stage: "Prepare", detail: `scratch disk: ${e.message}` })),
          Effect.forkScoped
        )
        : yield* Effect.forkScoped(Effect.void)
      const started = Date.now()
      const proc = yield* spawnVmm(
        [config.qemuBinary, ...qemuArgs({
          name: `pyro-${spec.id}`,
          accel: accel.accel,
          vcpus: spec.vcpus,
          memMib: spec.memMib,
          kernel: spec.kernel,
          initrd: spec.initrd,
          rootImage: spec.rootImage,
          scratchImage: paths.scratch,
          channelSocket: paths.channelSocket,
          qmpSocket: paths.qmpSocket,
          consoleLog: paths.consoleLog,
          network: spec.network,
          tscKhz
        })],
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
            console: yield* consoleTail(paths.consoleLog)
          })
        })

      const vmmDied = (exit: ProcessExit) =>
        Effect.gen(function*() {
          const socketSeen = yield* fs.exists(paths.channelSocket).pipe(Effect.orElseSucceed(() => false))
          const console = yield* consoleTail(paths.consoleLog)
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

      const timeoutMs = spec.timeoutMs ?? config.bootTimeoutMs
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
      const bootMs = Date.now() - started

      const attach = Effect.gen(function*() {
        yield* Fiber.join(formatting)
        yield* connection.attach({
          scratchSerial: SCRATCH_SERIAL,
          realtimeNs: BigInt(Date.now()) * 1_000_000n,
          entropy: randomBytes(64),
          hostname: `pyro-${spec.id}`
        }).pipe(Effect.catchAll((e) => Effect.flatMap(failure("Attach", e.message), Effect.fail)))
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
        exited: proc.exited,
        attach
      } satisfies RunningVm
    })

  const connect = (channelSocket: string, timeoutMs: number) =>
    connectAgent(channelSocket).pipe(
      Effect.timeoutFail({
        duration: timeoutMs,
        onTimeout: () =>
          new GuestChannelError({ reason: "Unresponsive", detail: `no answer on ${channelSocket} within ${timeoutMs} ms` })
      })
    )

  return Vmm.of({ accel, bootEphemeral, bootDetached, connect })
})

export const QemuVmmLive = Layer.effect(Vmm, make)
