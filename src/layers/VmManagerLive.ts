import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import { VmNotFound } from "../contract/errors.js"
import type { VmCreateInput, VmExecInput, VmInfo, VmRunInput } from "../contract/vm.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { KernelStore } from "../services/KernelStore.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { type RunOptions, VmManager } from "../services/VmManager.js"
import { Vmm } from "../services/Vmm.js"
import { outcomeFields, resultBudget, runCommand, WORKDIR } from "../vm/execCommand.js"
import { runOnHost } from "../vm/hostCompat.js"
import { selfIdentity } from "../vm/procfs.js"
import { killVmm } from "../vm/qemu/process.js"
import { listRecords, observedState, type PersistentRecord, readRecord, vmStartLock, writeRecord } from "../vm/record.js"
import { makeDetachedVms } from "../machine/detached.js"
import { claimBootSlot, ensureBelowLimit } from "../machine/limit.js"
import { withMachineLock, withStateLock } from "../machine/lock.js"
import { makeMachineLookup } from "../machine/lookup.js"
import { isExpired, iso, machineResultFields, newMachineFields, newMachineId, resultNetworkFields } from "../machine/record.js"
import { egressDir } from "../vm/network/egress.js"
import { networkInfoOf } from "../vm/network/info.js"
import { type GuestNetwork, guestCommandEnv, networkOfRecord } from "../vm/network/policy.js"
import { vmPaths } from "../vm/vmDir.js"
import { claimRunSlot } from "../vm/runClaim.js"
import { type HeadStart, takeHeadStart } from "../vm/headStart/recipe.js"
import { bootSpecFor, sizingOf } from "../vm/bootSpec.js"
import { clampSpares, reapIdleSpares, spareHostOf, spareKey } from "../vm/spares/store.js"
import { refillShape } from "../vm/spares/spawnFiller.js"
import { admit, requireHostCompatGrant } from "../vm/admission.js"
import { captureServices } from "./captureServices.js"
import { machineKinds, outsideLimit } from "./machineKinds.js"


/** How long a running VM's agent may take to accept a new connection. */
const CONNECT_TIMEOUT_MS = 15_000

const infoOf = (record: PersistentRecord): VmInfo => ({
  vm_id: record.id,
  ...machineResultFields(record),
  state: observedState(record),
  allow_host_compat: record.allow_host_compat,
  started_at: record.started_at,
  boot_ms: record.boot_ms
})

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const vmm = yield* Vmm
  const kernels = yield* KernelStore
  const environments = yield* EnvironmentStore
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor)
  const stateDir = config.stateDir
  /** Spares to keep of each shape this process runs: `PYRO_SPARES`, or what setWarmPool says. */
  let sparesWanted = config.spares

  const detached = makeDetachedVms(vmm)

  const checkLimit = ensureBelowLimit(stateDir, machineKinds, config.maxActiveVms, outsideLimit)

  const { anyRecord, getRecord, liveRecord, reapIfExpired } = makeMachineLookup({
    read: (vmId) => readRecord(stateDir, vmId),
    notFound: (vmId) => new VmNotFound({ vmId }),
    remove: removeRecord
  })

  /**
   * Why no guest can run on this host at all (no VMM, no usable kernel), if so:
   * the only reason a run allowed to fall back to the host does. One failed
   * boot (memory, a timeout, a broken image) never is.
   */
  const guestsUnavailable = Effect.flatMap(vmm.unavailable, Option.match({
    onSome: (why) => Effect.succeed(Option.some(why)),
    onNone: () =>
      kernels.ensure.pipe(
        Effect.as(Option.none<string>()),
        Effect.catchTag("KernelError", (e) => Effect.succeed(Option.some(e.message)))
      )
  }))

  /** What a run's result says of its network. */
  const runNetworkFields = (network: GuestNetwork) => {
    const { network_policy, allow_hosts } = resultNetworkFields(network)
    return { network_policy, allow_hosts }
  }

  const runOnHostInstead = (input: VmRunInput, network: GuestNetwork, options: RunOptions) =>
    Effect.gen(function*() {
      const outcome = yield* runOnHost({
        command: input.command,
        timeoutSeconds: input.timeout_seconds,
        maxOutputBytes: config.maxOutputBytes,
        ...(options.onOutput ? { onOutput: options.onOutput } : {})
      })
      return {
        result: {
          ...outcomeFields(outcome, "host_compat", yield* resultBudget(config)),
          vm_id: newMachineId(),
          environment: input.environment,
          boot_ms: 0,
          ...runNetworkFields(network)
        },
        stdout: outcome.stdout.bytes(),
        stderr: outcome.stderr.bytes()
      }
    })

  const run = (input: VmRunInput, options: RunOptions = {}) =>
    Effect.gen(function*() {
      // Only a simple `pyro run` of the CLI has one (bin/pyro.js); whatever it started and this run did not take goes.
      const headStart = takeHeadStart()
      const discardHeadStart = headStart ? Effect.promise(headStart.discard) : Effect.void
      return yield* Effect.gen(function*() {
        const network = yield* admit(input, config.allowHosts)
        if (input.allow_host_compat && Option.isSome(yield* guestsUnavailable)) {
          yield* discardHeadStart
          return yield* runOnHostInstead(input, network, options)
        }
        return yield* runInGuest(input, network, options, headStart)
      }).pipe(Effect.ensuring(discardHeadStart))
    }).pipe(
      Effect.provide(context),
      Effect.withSpan("VmManager.run", { attributes: { environment: input.environment } })
    )

  const runInGuest = (input: VmRunInput, network: GuestNetwork, options: RunOptions, headStart: HeadStart | undefined) =>
    Effect.scoped(Effect.gen(function*() {
      const started = Date.now()
      const [assets, environment] = yield* Effect.all([kernels.ensure, environments.ensure(input.environment)], {
        concurrency: 2
      })
      const shapeSpec = bootSpecFor("run", assets, environment, sizingOf(input, network))
      const key = spareKey(shapeSpec, spareHostOf(config, vmm.vmmExecutable))
      // Check the limit and claim a slot (and a ready spare) in one step, so parallel runs cannot all
      // slip under it. The claim holds the slot for the whole run (an ephemeral record alone holds none).
      const shape = { environment: environment.name, vcpu_count: input.vcpu_count, mem_mib: input.mem_mib }
      const { paths, spare } = Option.getOrThrow(yield* claimRunSlot({
        stateDir,
        checkLimit,
        spareKey: options.useSpare === false ? undefined : key,
        spareOnly: false,
        qemu: vmm.vmmExecutable,
        // A head start's directory becomes the run's, unless a spare serves it.
        ...(headStart?.started ? { headStart: { id: headStart.started.id, vmm: headStart.started.pid } } : {}),
        // A run under the limit: after it, the shape is made whole again (a refused one starts nothing).
        ...(key !== undefined ? { afterRelease: refillShape(config, key, shape, sparesWanted) } : {})
      }))
      if (headStart?.started?.id === paths.id) headStart.claimed()
      else if (headStart) yield* Effect.promise(headStart.discard)
      const boot = Effect.tap(vmm.bootEphemeral({ ...shapeSpec, id: paths.id }, headStart ? { headStart } : {}), (vm) => vm.attach)
      // A spare that died since it was claimed costs a boot, not the run.
      const vm = spare
        ? yield* Effect.map(vmm.connect(paths.channelSocket, CONNECT_TIMEOUT_MS), (connection) => ({ connection, bootMs: 0 })).pipe(
          // Gone before the new QEMU binds the same sockets.
          Effect.catchAll(() => Effect.zipRight(killVmm(spare.vmm), boot))
        )
        : yield* boot
      const outcome = yield* runCommand(vm.connection, {
        command: input.command,
        cwd: WORKDIR,
        env: guestCommandEnv(network),
        timeoutSeconds: input.timeout_seconds,
        maxOutputBytes: config.maxOutputBytes,
        ...(options.onOutput ? { onOutput: options.onOutput } : {})
      })
      // The run is over: QEMU is killed now, so its exit (~20 ms of freeing its memory) overlaps the result's making.
      if ("kill" in vm) yield* vm.kill
      return {
        result: {
          ...outcomeFields(outcome, "guest_virtio_serial", yield* resultBudget(config)),
          duration_ms: Date.now() - started,
          vm_id: paths.id,
          environment: environment.name,
          boot_ms: vm.bootMs,
          ...runNetworkFields(network)
        },
        stdout: outcome.stdout.bytes(),
        stderr: outcome.stderr.bytes()
      }
    }))

  const create = (input: VmCreateInput) =>
    Effect.gen(function*() {
      const network = yield* admit(input, config.allowHosts)
      // Installed now, so that vm_start only boots.
      const environment = yield* environments.ensure(input.environment)
      const record: PersistentRecord = {
        ...newMachineFields(newMachineId(), environment.name, input, network, Date.now()),
        kind: "persistent",
        state: "created",
        started_at: null,
        owner: selfIdentity(),
        scratch_formatted: false
      }
      yield* withStateLock(stateDir, Effect.gen(function*() {
        yield* checkLimit
        Fs.mkdirSync(vmPaths(stateDir, record.id).dir, { recursive: true, mode: 0o700 })
        yield* writeRecord(stateDir, record).pipe(Effect.orDie)
      }))
      return infoOf(record)
    }).pipe(Effect.provide(context))

  /**
   * Boot a created or stopped VM; a started one is left as it is. One start per VM at a
   * time, across processes (a lock file in its directory): two would boot two QEMUs on
   * one disk.
   */
  const startRecord = (seen: PersistentRecord) =>
    Effect.suspend(() => {
      if (observedState(seen) === "started") return Effect.succeed(seen)
      const dir = vmPaths(stateDir, seen.id).dir
      if (!Fs.existsSync(dir)) return Effect.fail(new VmNotFound({ vmId: seen.id }))
      return withMachineLock(
        stateDir,
        vmStartLock(seen.id),
        Effect.flatMap(readRecord(stateDir, seen.id), Option.match({
          onNone: () => Effect.fail(new VmNotFound({ vmId: seen.id })),
          onSome: bootRecord
        }))
      )
    })

  const bootRecord = (initial: PersistentRecord) =>
    Effect.scoped(Effect.gen(function*() {
      // Started by another call while this one waited for the lock.
      if (observedState(initial) === "started") return initial
      const dir = vmPaths(stateDir, initial.id).dir
      // A created VM already holds its slot; a stopped one (or one whose QEMU died) claims
      // it again, in one step with the check, until its record names the running VM.
      if (observedState(initial) === "stopped") yield* claimBootSlot(stateDir, machineKinds, dir, config.maxActiveVms, outsideLimit)
      const boot = Effect.gen(function*() {
        const [assets, environment] = yield* Effect.all([
          kernels.ensure,
          environments.ensure(initial.environment)
        ], { concurrency: 2 })
        return yield* vmm.bootDetached(bootSpecFor(initial.id, assets, environment, sizingOf(initial, networkOfRecord(initial))), vmPaths(stateDir, initial.id), {
          formatScratch: !initial.scratch_formatted,
          journaledScratch: false,
          dieWithParent: true
        })
      })
      const onHost = initial.allow_host_compat && Option.isSome(yield* guestsUnavailable)
      if (onHost) yield* requireHostCompatGrant(initial.id)
      const booted = onHost
        ? { vm: undefined, mode: "host_compat" as const }
        : { vm: yield* boot, mode: "guest_virtio_serial" as const }
      // Deleted while it booted: the new QEMU must not outlive its record.
      return yield* withStateLock(stateDir, Effect.gen(function*() {
        const current = yield* readRecord(stateDir, initial.id)
        if (Option.isNone(current)) {
          if (booted.vm) yield* killVmm(booted.vm)
          return yield* new VmNotFound({ vmId: initial.id })
        }
        const record: PersistentRecord = {
          ...current.value,
          state: "started",
          execution_mode: booted.mode,
          started_at: iso(Date.now()),
          boot_ms: booted.vm?.bootMs ?? 0,
          vmm: booted.vm ? { pid: booted.vm.pid, startTime: booted.vm.startTime } : null,
          scratch_formatted: current.value.scratch_formatted || booted.vm !== undefined
        }
        yield* writeRecord(stateDir, record).pipe(Effect.orDie)
        return record
      }))
    }))

  const start = (vmId: string) =>
    Effect.flatMap(getRecord(vmId), startRecord).pipe(Effect.map(infoOf), Effect.provide(context))

  // Typed by hand: it and the lookup that reaps with it refer to each other.
  function removeRecord(
    vmId: string
  ): Effect.Effect<{ readonly record: PersistentRecord; readonly wasRunning: boolean }, VmNotFound, FileSystem.FileSystem> {
    return Effect.gen(function*() {
      const record = yield* anyRecord(vmId)
      const wasRunning = yield* detached.kill({ vmm: record.vmm, dir: vmPaths(stateDir, vmId).dir })
      yield* withStateLock(
        stateDir,
        Effect.sync(() => Fs.rmSync(vmPaths(stateDir, vmId).dir, { recursive: true, force: true }))
      )
      return { record, wasRunning }
    })
  }

  const remove = (vmId: string) =>
    Effect.map(removeRecord(vmId), ({ wasRunning }) => ({
      vm_id: vmId,
      state: "deleted" as const,
      was_running: wasRunning
    })).pipe(Effect.provide(context))

  const exec = (input: VmExecInput, options: RunOptions = {}) =>
    Effect.gen(function*() {
      const record = yield* startRecord(yield* getRecord(input.vm_id))
      const commandOptions = {
        command: input.command,
        timeoutSeconds: input.timeout_seconds,
        maxOutputBytes: config.maxOutputBytes,
        ...(options.onOutput ? { onOutput: options.onOutput } : {})
      }
      if (record.execution_mode === "host_compat") yield* requireHostCompatGrant(record.id)
      const outcome = record.execution_mode === "host_compat"
        ? yield* runOnHost(commandOptions)
        : yield* Effect.scoped(Effect.gen(function*() {
          const connection = yield* vmm.connect(vmPaths(stateDir, record.id).channelSocket, CONNECT_TIMEOUT_MS)
          return yield* runCommand(connection, { ...commandOptions, cwd: WORKDIR, env: guestCommandEnv(networkOfRecord(record)) })
        }))
      return {
        ...outcomeFields(outcome, record.execution_mode, yield* resultBudget(config)),
        vm_id: record.id,
        environment: record.environment,
        deleted: true
      }
    }).pipe(
      // The contract: the VM is gone after its one command, whatever happened.
      Effect.ensuring(Effect.ignore(removeRecord(input.vm_id))),
      Effect.provide(context)
    )

  const stop = (vmId: string) =>
    Effect.gen(function*() {
      const record = yield* getRecord(vmId)
      yield* detached.stop({ vmm: record.vmm, ...vmPaths(stateDir, vmId) })
      return yield* withStateLock(stateDir, Effect.gen(function*() {
        const current = yield* liveRecord(vmId)
        const stopped: PersistentRecord = {
          ...current,
          state: current.state === "created" ? "created" : "stopped",
          vmm: null
        }
        yield* writeRecord(stateDir, stopped).pipe(Effect.orDie)
        return infoOf(stopped)
      })).pipe(Effect.tapErrorTag("VmNotFound", () => reapIfExpired(vmId)))
    }).pipe(Effect.provide(context))

  const status = (vmId: string) => Effect.map(getRecord(vmId), infoOf).pipe(Effect.provide(context))

  const networkInfo = (vmId: string) =>
    Effect.map(
      getRecord(vmId),
      (record) => networkInfoOf(vmId, networkOfRecord(record), egressDir(vmPaths(stateDir, vmId).dir))
    ).pipe(Effect.provide(context))

  const list = Effect.map(listRecords(stateDir), (records) => records.map(infoOf)).pipe(Effect.provide(context))

  const reapExpired = Effect.gen(function*() {
    // Idle spares too, so a long-lived process (the MCP server reaps every 30 s) does not wait for the next start.
    yield* reapIdleSpares(config, vmm.vmmExecutable)
    const now = Date.now()
    const reaped: Array<{ kind: "vm"; id: string; environment: string; expired_at: string }> = []
    for (const record of yield* listRecords(stateDir)) {
      if (!isExpired(record, now)) continue
      const removed = yield* Effect.either(removeRecord(record.id))
      if (removed._tag === "Right") {
        reaped.push({ kind: "vm", id: record.id, environment: record.environment, expired_at: record.expires_at })
      }
    }
    return { reaped, count: reaped.length }
  }).pipe(Effect.provide(context))

  return VmManager.of({
    run,
    setWarmPool: (size) => Effect.sync(() => void (sparesWanted = clampSpares(size))),
    listEnvironments: environments.list,
    create,
    start,
    exec,
    stop,
    remove,
    status,
    networkInfo,
    list,
    reapExpired
  })
})

export const VmManagerLive = Layer.scoped(VmManager, make)
