import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import type { Command } from "../contract/common.js"
import { InvalidInput, WorkspaceImportFailed, WorkspaceNotFound, WorkspaceNotStopped } from "../contract/errors.js"
import { GuestChannelError } from "../vm/errors.js"
import { WORKSPACE_PATH } from "../contract/workspace/paths.js"
import { type WorkspaceCreateInput, type WorkspaceSummary } from "../contract/workspace/lifecycle.js"
import { type WorkspaceExecInput } from "../contract/workspace/exec.js"
import { type WorkspaceSyncPushInput } from "../contract/workspace/sync.js"
import { MAX_LABELS } from "../contract/workspace/labels.js"
import { type WorkspaceUpdateInput } from "../contract/workspace/manage.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { KernelStore } from "../services/KernelStore.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { Vmm } from "../services/Vmm.js"
import { WorkspaceManager } from "../services/WorkspaceManager.js"
import { makeDetachedVms } from "../machine/detached.js"
import { claimBootSlot } from "../machine/limit.js"
import { withMachineLock } from "../machine/lock.js"
import { makeMachineLookup } from "../machine/lookup.js"
import { isExpired, iso, machineResultFields, newMachineFields, newMachineId, vmmAlive } from "../machine/record.js"
import { admit } from "../vm/admission.js"
import { guestCommandEnv, networkOfRecord } from "../vm/network/policy.js"
import { bootSpecFor, sizingOf } from "../vm/bootSpec.js"
import {
  type CommandOutcome,
  exceeds,
  type KeptAt,
  outcomeFields,
  type OutputSink,
  resultBudget,
  runCommand
} from "../vm/execCommand.js"
import { budgetBytes, evenBudget, shapeCaptured } from "../vm/output.js"
import { listingForCaller } from "../workspace/journalListing.js"
import { keepOutputInGuest } from "../workspace/keptOutput.js"
import { Caller } from "../services/Caller.js"
import { killVmm } from "../vm/qemu/process.js"
import { qemusUsing } from "../vm/vmmIdentity.js"
import type { ImportSourceError, UnsafeImportEntry } from "../workspace/import/errors.js"
import { boundsOf, importPathFor } from "../workspace/import/roots.js"
import { guestUntar } from "../workspace/import/guestUntar.js"
import { type ImportSource, pathImport } from "../workspace/import/source.js"
import { type SeedSource, projectSeed } from "../workspace/project/seed.js"
import { ProjectSource } from "../services/ProjectSource.js"
import {
  ACTIVITY_RESOLUTION_MS,
  appendJournal,
  BASELINE_LIMITS,
  type JournalLine,
  lastActivityAt,
  listWorkspaces,
  readJournal,
  readWorkspace,
  workspaceLock,
  type WorkspacePaths,
  topLayerPath,
  workspacePaths,
  type WorkspaceRecord,
  writeWorkspace
} from "../workspace/store.js"
import { SINGLE_LAYER } from "../workspace/disk/layers.js"
import { removeRam } from "../vm/ramFile.js"
import { makeSnapshots } from "../workspace/snapshots.js"
import { makeFork } from "../workspace/fork.js"
import type { WorkspaceForkInput } from "../contract/workspace/snapshots.js"
import { captureServices } from "./captureServices.js"
import { sanitizedTar } from "../archive/checked.js"
import type { WorkspaceGuest } from "../services/WorkspaceManager.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import { makeChannelLeases, WORKSPACE_CHANNELS } from "../workspace/channels.js"
import { syncGuestDisk } from "../workspace/guestDisk.js"
import { guestTar } from "../workspace/guestFs.js"
import { writeStreamToFile } from "../host/files.js"
import { machineKinds, outsideLimit } from "./machineKinds.js"
import { stopAllForwarders } from "../workspace/ports/registry.js"
import { provideSecrets } from "../workspace/secrets/guest.js"
import { makeRedactor } from "../workspace/secrets/redact.js"
import { readSecrets, resolveSecrets, secretEnvEntries, secretMetadata, writeSecrets } from "../workspace/secrets/store.js"

/** Output each journal entry keeps per stream; results themselves keep up to PYRO_MAX_OUTPUT_BYTES. */
export const JOURNAL_OUTPUT_BYTES = 64 * 1024
/** How long a running workspace VM's agent may take to accept a connection. */
const CONNECT_TIMEOUT_MS = 15_000
/** An import has this long to unpack in the guest (large trees under TCG are slow). */
const IMPORT_TIMEOUT_SECONDS = 3600

const summaryOf = (record: WorkspaceRecord): WorkspaceSummary => ({
  workspace_id: record.id,
  name: record.name,
  labels: record.labels,
  ...machineResultFields(record),
  last_activity_at: lastActivityAt(record),
  state: vmmAlive(record) ? "started" : "stopped",
  workspace_path: WORKSPACE_PATH,
  command_count: record.command_count,
  last_command: record.last_command,
  workspace_seed: record.workspace_seed,
  secrets: record.secrets,
  reset_count: record.reset_count,
  last_reset_at: record.last_reset_at,
  snapshots: record.snapshots.map((s) => s.snapshot_name),
  forked_from: record.forked_from
})

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const vmm = yield* Vmm
  const kernels = yield* KernelStore
  const environments = yield* EnvironmentStore
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor)
  const stateDir = config.stateDir
  const importBounds = boundsOf(config)

  const detached = makeDetachedVms(vmm)

  const { getRecord, liveRecord, reapIfExpired } = makeMachineLookup({
    read: (id) => readWorkspace(stateDir, id),
    notFound: (id) => new WorkspaceNotFound({ workspaceId: id }),
    remove: (id) => remove(id)
  })

  /**
   * The workspace's lock, across processes, for the short steps that change its
   * record (booting its VM, numbering and journaling a command, create, delete),
   * never across a command. `body` gets the record read under the lock (once:
   * `liveRecord`); a workspace found missing or expired there is reaped once the
   * lock is let go.
   */
  const locked = <A, E, R>(
    id: string,
    body: (record: WorkspaceRecord) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | WorkspaceNotFound, R> =>
    withMachineLock(stateDir, workspaceLock(id), Effect.flatMap(liveRecord(id), body)).pipe(
      Effect.tapError((e) => (e instanceof WorkspaceNotFound ? reapIfExpired(id) : Effect.void))
    )

  /**
   * Boot the workspace's VM on the disk it already has, if it is not running
   * (the host restarted); `formatScratch` for a new one; `resumeFrom` a fork's
   * saved state (src/workspace/fork.ts), whose secrets are in its RAM already.
   */
  const ensureRunning = (record: WorkspaceRecord, options: { readonly formatScratch?: boolean; readonly resumeFrom?: string } = {}) =>
    Effect.scoped(Effect.gen(function*() {
      if (vmmAlive(record)) return record
      const paths = workspacePaths(stateDir, record.id)
      // Never two QEMUs on one disk: one left by a boot cut short goes first.
      yield* detached.kill({ vmm: record.vmm, dir: paths.dir })
      yield* claimBootSlot(stateDir, machineKinds, paths.dir, config.maxActiveVms, outsideLimit)
      const [assets, environment] = yield* Effect.all([kernels.ensure, environments.ensure(record.environment)], {
        concurrency: 2
      })
      const spec = bootSpecFor(record.id, assets, environment, { ...sizingOf(record, networkOfRecord(record)), channels: record.channels })
      // QEMU writes the disk's top layer (the base, until the first snapshot).
      const vm = yield* vmm.bootDetached(spec, { ...paths, scratch: topLayerPath(paths, record) }, {
        formatScratch: options.formatScratch ?? false,
        journaledScratch: true,
        dieWithParent: false,
        ...(options.resumeFrom !== undefined ? { resumeFrom: options.resumeFrom } : {})
      })
      const updated: WorkspaceRecord = { ...record, vmm: { pid: vm.pid, startTime: vm.startTime }, boot_ms: vm.bootMs }
      yield* writeWorkspace(stateDir, updated).pipe(Effect.orDie)
      // A tmpfs does not survive a boot: every boot puts the secrets back.
      const secrets = options.resumeFrom !== undefined ? [] : yield* readSecrets(paths.dir)
      if (secrets.length > 0) yield* withConnection(updated, (connection) => provideSecrets(connection, secrets))
      return updated
    }))

  const leases = yield* makeChannelLeases({ stateDir, timeoutMs: CONNECT_TIMEOUT_MS, connect: vmm.connect })

  /**
   * The workspace's agent for `use`, over this process's lease of one of its
   * channels (shared by every call this process makes on it at once). A guest
   * that stops answering (a write past its deadline, no end to a command) has
   * its VM killed: the call fails with why, and the next one boots the VM again
   * on the same disk.
   */
  const withConnection = <A, E, R>(record: WorkspaceRecord, use: (connection: GuestConnection) => Effect.Effect<A, E, R>) =>
    leases.withChannel({ id: record.id, channels: record.channels }, use).pipe(
      Effect.tapError((e) =>
        e instanceof GuestChannelError && e.reason === "Unresponsive" ? killVmm(record.vmm) : Effect.void
      )
    )

  /** The record, its VM booted if it was not running: the lock is taken only for a boot. */
  const running = (id: string) =>
    // A running VM needs no lock (file reads and the like stay off it); only a boot takes it.
    Effect.flatMap(getRecord(id), (record) =>
      vmmAlive(record) ? Effect.succeed(record) : locked(id, (current) => ensureRunning(current)))

  /**
   * Bring last_activity_at up to now, unless `record` (as the operation read
   * it) already has it within ACTIVITY_RESOLUTION_MS: then nothing is read or
   * written. A workspace deleted meanwhile is left gone.
   */
  const noteActivity = (record: WorkspaceRecord) =>
    Date.now() - Date.parse(lastActivityAt(record)) < ACTIVITY_RESOLUTION_MS
      ? Effect.void
      : Effect.ignore(locked(record.id, (current) =>
        writeWorkspace(stateDir, { ...current, last_activity_at: iso(Date.now()) }).pipe(Effect.orDie)))

  const withGuest = <A, E, R>(
    id: string,
    use: (guest: WorkspaceGuest) => Effect.Effect<A, E, R>,
    options: { readonly boot?: boolean; readonly activity?: boolean } = {}
  ) =>
    Effect.flatMap(
      options.boot === false
        ? Effect.filterOrFail(getRecord(id), vmmAlive, () =>
          new GuestChannelError({ reason: "Closed", detail: `workspace ${id}'s VM is not running` }))
        : running(id),
      (record) =>
      withConnection(record, (connection) => use({ record, connection, paths: workspacePaths(stateDir, id) })).pipe(
        Effect.tap(() => (options.activity ? noteActivity(record) : Effect.void))
      )).pipe(
        Effect.provide(context)
      )

  /** Validate the whole source first, so an unsafe entry is refused before anything is written. */
  const importInto = (record: WorkspaceRecord, source: ImportSource, dest: string) =>
    Effect.gen(function*() {
      const summary = yield* source.inspect
      // A source that fails half-way (changed since it was checked) ends the archive early,
      // so the guest's tar stops at once; its error is the one reported.
      let streamFailure: UnsafeImportEntry | ImportSourceError | undefined
      const stdin = source.tar.pipe(
        Stream.catchAll((e) => {
          streamFailure = e
          return Stream.empty
        })
      )
      const outcome = yield* withConnection(record, (connection) =>
        runCommand(connection, {
          command: guestUntar(dest),
          cwd: "/",
          timeoutSeconds: IMPORT_TIMEOUT_SECONDS,
          maxOutputBytes: 64 * 1024,
          stdin
        }).pipe(Effect.tap(() => syncGuestDisk(connection))))
      if (streamFailure) return yield* Effect.fail(streamFailure)
      if (outcome.exitCode !== 0) {
        return yield* new WorkspaceImportFailed({
          workspaceId: record.id,
          dest,
          detail: outcome.stderr.text().trim().split("\n").slice(-5).join("\n") || `the extractor exited with ${outcome.exitCode}`
        })
      }
      return summary
    })

  /**
   * /workspace as it is now, kept on the host as the baseline workspace_diff
   * compares against: the guest's tar read through the archive policy, bounded.
   * A workspace too large for one keeps the reason instead, and diff says it.
   */
  const takeBaseline = (connection: GuestConnection, id: string) =>
    Effect.gen(function*() {
      const paths = workspacePaths(stateDir, id)
      const partial = `${paths.baseline}.partial`
      const written = yield* writeStreamToFile(
        sanitizedTar(guestTar(connection, id, WORKSPACE_PATH), `workspace ${id} baseline`, BASELINE_LIMITS),
        partial
      ).pipe(Effect.either)
      if (written._tag === "Right") {
        Fs.renameSync(partial, paths.baseline)
        return
      }
      Fs.rmSync(partial, { force: true })
      const failure = written.left
      if (failure instanceof GuestChannelError) return yield* failure
      yield* Effect.logWarning(`workspace ${id}: no diff baseline: ${failure.message}`)
      Fs.writeFileSync(paths.baselineMissing, failure.message, { mode: 0o600 })
    })

  /**
   * What a new workspace is seeded from: the caller's seed_path (checked against the
   * import roots), else the server's project (the operator's choice: ProjectSource), else nothing.
   */
  const seedFor = (seedPath: string | undefined) =>
    Effect.gen(function*() {
      if (seedPath !== undefined) {
        const path = yield* importPathFor("seed_path", seedPath, importBounds)
        return { source: pathImport(path), origin: { origin_kind: "manual", origin_ref: null } } satisfies SeedSource
      }
      const project = yield* ProjectSource
      return project.kind === "none" ? undefined : yield* projectSeed(project)
    })

  const create = (input: WorkspaceCreateInput) =>
    Effect.gen(function*() {
      const network = yield* admit(input, config.allowHosts)
      // Check the seed before booting anything.
      const seed = yield* seedFor(input.seed_path)
      const seedSummary = seed === undefined ? undefined : yield* seed.source.inspect
      const secrets = yield* resolveSecrets(input.secrets ?? [], importBounds)
      const environment = yield* environments.ensure(input.environment)
      const now = Date.now()
      const id = newMachineId()
      const paths = workspacePaths(stateDir, id)
      Fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 })
      const initial: WorkspaceRecord = {
        ...newMachineFields(id, environment.name, input, network, now),
        command_count: 0,
        commands_started: 0,
        last_command: null,
        channels: WORKSPACE_CHANNELS,
        secrets: secretMetadata(secrets),
        name: input.name ?? null,
        labels: input.labels ?? {},
        last_activity_at: iso(now),
        disk: SINGLE_LAYER,
        snapshots: [],
        reset_count: 0,
        last_reset_at: null,
        forked_from: null,
        workspace_seed: {
          mode: seedSummary === undefined ? "empty" : seedSummary.kind,
          seed_path: input.seed_path ?? null,
          ...(seed?.origin ?? { origin_kind: "empty", origin_ref: null }),
          files: seedSummary?.files ?? 0,
          bytes: seedSummary?.bytes ?? 0
        }
      }
      const build = Effect.gen(function*() {
        yield* writeWorkspace(stateDir, initial).pipe(Effect.orDie)
        yield* writeSecrets(paths.dir, secrets)
        const started = yield* ensureRunning(initial, { formatScratch: true })
        if (seed !== undefined) yield* importInto(started, seed.source, WORKSPACE_PATH)
        yield* withConnection(started, (connection) => takeBaseline(connection, started.id))
        // The state reset goes back to by default.
        return yield* snapshots.takeBaseline(started)
      })
      // A workspace that could not be made leaves nothing behind.
      const record = yield* withMachineLock(stateDir, workspaceLock(id), build).pipe(
        Effect.onError(() =>
          Effect.gen(function*() {
            const current = yield* readWorkspace(stateDir, id)
            if (Option.isSome(current)) yield* killVmm(current.value.vmm)
            yield* removeRam(paths.ram)
            Fs.rmSync(paths.dir, { recursive: true, force: true })
          })
        )
      )
      return summaryOf(record)
    }).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.create"))

  const syncPush = (input: WorkspaceSyncPushInput) =>
    Effect.flatMap(importPathFor("source_path", input.source_path, importBounds), (sourcePath) =>
      Effect.gen(function*() {
        const started = Date.now()
        const record = yield* running(input.workspace_id)
        const summary = yield* importInto(record, pathImport(sourcePath), input.dest)
        yield* noteActivity(record)
        return {
          workspace_id: record.id,
          source_path: input.source_path,
          dest: input.dest,
          kind: summary.kind,
          files: summary.files,
          directories: summary.directories,
          symlinks: summary.symlinks,
          hardlinks: summary.hardlinks,
          bytes: summary.bytes,
          neutralised: summary.neutralised,
          duration_ms: Date.now() - started
        }
      })).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.syncPush"))

  const journalEntry = (
    sequence: number,
    command: Command,
    outcome: CommandOutcome,
    mode: WorkspaceRecord["execution_mode"],
    startedAt: number,
    keptAt: KeptAt
  ): JournalLine => {
    const stdout = shapeCaptured("stdout", outcome.stdout, evenBudget(JOURNAL_OUTPUT_BYTES), keptAt.stdout)
    const stderr = shapeCaptured("stderr", outcome.stderr, evenBudget(JOURNAL_OUTPUT_BYTES), keptAt.stderr)
    return {
      sequence,
      command,
      cwd: WORKSPACE_PATH,
      execution_mode: mode,
      exit_code: outcome.exitCode,
      timed_out: outcome.timedOut,
      duration_ms: outcome.durationMs,
      started_at: iso(startedAt),
      finished_at: iso(startedAt + outcome.durationMs),
      stdout: stdout.text,
      stderr: stderr.text,
      stdout_truncated: stdout.truncated,
      stderr_truncated: stderr.truncated,
      stdout_bytes: outcome.stdout.total,
      stderr_bytes: outcome.stderr.total,
      kept_at: keptAt
    }
  }

  /** The next sequence number, given out under the lock (with the VM booted if needed): commands are numbered in start order. */
  const startCommand = (id: string) =>
    locked(id, (current) => Effect.gen(function*() {
      const record = yield* ensureRunning(current)
      const sequence = Math.max(record.commands_started, record.command_count) + 1
      const updated = { ...record, commands_started: sequence }
      yield* writeWorkspace(stateDir, updated).pipe(Effect.orDie)
      return { record: updated, sequence }
    }))

  /** Journal a finished command and count it; the last command is the latest started of those finished. */
  const finishCommand = (id: string, entry: JournalLine, command: Command) =>
    locked(id, (record) => Effect.gen(function*() {
      yield* appendJournal(workspacePaths(stateDir, id), entry)
      const newest = record.last_command === null || entry.sequence > record.last_command.sequence
      yield* writeWorkspace(stateDir, {
        ...record,
        // Commands finishing at once may journal out of order: the activity never goes back.
        last_activity_at: [lastActivityAt(record), entry.finished_at].sort()[1]!,
        command_count: record.command_count + 1,
        last_command: newest
          ? {
            sequence: entry.sequence,
            command,
            exit_code: entry.exit_code,
            duration_ms: entry.duration_ms,
            finished_at: entry.finished_at
          }
          : record.last_command
      }).pipe(Effect.orDie)
    }))

  /**
   * Commands run at once, from any number of processes: only numbering and
   * journaling take the workspace's lock, never the command itself.
   */
  const exec = (input: WorkspaceExecInput, options: { readonly onOutput?: OutputSink } = {}) =>
    Effect.gen(function*() {
      const { record, sequence } = yield* startCommand(input.workspace_id)
      const secrets = yield* readSecrets(workspacePaths(stateDir, record.id).dir)
      const secretEnv = yield* secretEnvEntries(secrets, input.secret_env)
      const startedAt = Date.now()
      const budget = yield* resultBudget(config)
      // Synced before returning: once exec answers, its files (and the output kept beside
      // them when the result cannot carry all of it) survive QEMU being killed.
      const { outcome, keptAt } = yield* withConnection(record, (connection) =>
        Effect.gen(function*() {
          const outcome = yield* runCommand(connection, {
            command: input.command,
            cwd: WORKSPACE_PATH,
            timeoutSeconds: input.timeout_seconds,
            maxOutputBytes: config.maxOutputBytes,
            env: [...guestCommandEnv(networkOfRecord(record)), ...secretEnv],
            filter: makeRedactor(secrets.map((s) => s.value)),
            ...(options.onOutput ? { onOutput: options.onOutput } : {})
          })
          // All of a stream that the result or the journal cannot carry goes into the guest.
          const keepAbove = Math.min(budgetBytes(budget), JOURNAL_OUTPUT_BYTES)
          const keptAt = exceeds(outcome, evenBudget(keepAbove))
            ? yield* keepOutputInGuest(connection, sequence, outcome, keepAbove)
            : {}
          yield* syncGuestDisk(connection)
          return { outcome, keptAt }
        }))
      const entry = journalEntry(sequence, input.command, outcome, record.execution_mode, startedAt, keptAt)
      yield* finishCommand(record.id, entry, input.command)
      return {
        workspace_id: record.id,
        sequence,
        cwd: WORKSPACE_PATH,
        ...outcomeFields(outcome, record.execution_mode, budget, keptAt)
      } as const
    }).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.exec"))

  const status = (id: string) => Effect.map(getRecord(id), summaryOf).pipe(Effect.provide(context))

  const logs = (id: string) =>
    Effect.gen(function*() {
      yield* getRecord(id)
      const lines = yield* readJournal(workspacePaths(stateDir, id))
      const caller = yield* Caller
      return {
        workspace_id: id,
        count: lines.length,
        entries: caller.kind === "operator"
          ? lines.map(({ kept_at: _, ...entry }) => entry)
          : listingForCaller(lines, config.outputBudgetBytes)
      }
    }).pipe(Effect.provide(context))

  /**
   * Stop the workspace's VM, its disk kept: published ports closed, the guest's
   * disk synced and its filesystem frozen clean (POWEROFF), QEMU given a grace
   * to exit before it is killed, and the record told. Commands in flight, shells
   * and services end with the VM. Idempotent.
   */
  const stop = (id: string) =>
    locked(id, (record) =>
      Effect.gen(function*() {
        const paths = workspacePaths(stateDir, id)
        stopAllForwarders(paths.dir)
        yield* detached.stopWith(
          record.vmm,
          withConnection(record, (connection) => Effect.zipRight(connection.sync, connection.poweroff))
        )
        // A QEMU no record names (a boot cut short) goes too: nothing may write the disk now.
        yield* detached.kill({ vmm: null, dir: paths.dir })
        yield* removeRam(paths.ram)
        const stopped: WorkspaceRecord = { ...record, vmm: null }
        if (record.vmm !== null) yield* writeWorkspace(stateDir, stopped).pipe(Effect.orDie)
        return summaryOf(stopped)
      })).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.stop"))

  /** Boot the workspace's VM on its disk (as the next exec would); a running one is left as it is. */
  const start = (id: string) =>
    Effect.map(locked(id, (record) => ensureRunning(record)), summaryOf).pipe(
      Effect.provide(context),
      Effect.withSpan("WorkspaceManager.start")
    )

  /**
   * `use` on a stopped workspace's disk image, holding the workspace's lock so
   * that no boot starts meanwhile; a running one is refused, naming `operation`.
   */
  const withStoppedDisk = <A, E, R>(
    id: string,
    operation: string,
    use: (stopped: { readonly record: WorkspaceRecord; readonly paths: WorkspacePaths }) => Effect.Effect<A, E, R>
  ) =>
    locked(id, (record) =>
      Effect.gen(function*() {
        const paths = workspacePaths(stateDir, id)
        if (vmmAlive(record) || qemusUsing(paths.dir, vmm.vmmExecutable).length > 0) {
          return yield* new WorkspaceNotStopped({ workspaceId: id, operation })
        }
        return yield* use({ record, paths })
      })).pipe(Effect.provide(context))

  /** Kill the VM first (an exec in flight ends at once), then remove everything under the lock. */
  const remove = (id: string) =>
    Effect.gen(function*() {
      const paths = workspacePaths(stateDir, id)
      const record = yield* readWorkspace(stateDir, id)
      // Published ports close at once, not when their forwarders next find the VM gone.
      stopAllForwarders(paths.dir)
      const wasRunning = yield* detached.kill({ vmm: Option.getOrNull(record)?.vmm, dir: paths.dir })
      if (!Fs.existsSync(paths.dir)) return { workspace_id: id, state: "deleted" as const, deleted: false, was_running: false }
      yield* withMachineLock(stateDir, workspaceLock(id), Effect.gen(function*() {
        // A start in flight may have booted it again meanwhile.
        const current = yield* readWorkspace(stateDir, id)
        yield* detached.kill({ vmm: Option.getOrNull(current)?.vmm, dir: paths.dir })
        yield* removeRam(paths.ram)
        Fs.rmSync(paths.dir, { recursive: true, force: true })
      }))
      return { workspace_id: id, state: "deleted" as const, deleted: true, was_running: wasRunning }
    }).pipe(Effect.provide(context))

  /** Every workspace not yet expired (an expired one is the reaper's, and as good as gone). */
  const list = Effect.map(listWorkspaces(stateDir), (records) => {
    const now = Date.now()
    return records.filter((r) => !isExpired(r, now)).map(summaryOf)
  }).pipe(Effect.provide(context))

  /** Name, labels and expiry, changed under the workspace's lock (so no exec's record write undoes them). */
  const update = (input: WorkspaceUpdateInput) =>
    Effect.gen(function*() {
      if (input.name !== undefined && input.clear_name) {
        return yield* new InvalidInput({ detail: "name: give name or clear_name, not both" })
      }
      return yield* locked(input.workspace_id, (record) =>
        Effect.gen(function*() {
          const kept: Record<string, string> = input.clear_labels ? {} : { ...record.labels }
          for (const key of input.remove_labels ?? []) delete kept[key]
          const labels = { ...kept, ...input.labels }
          if (Object.keys(labels).length > MAX_LABELS) {
            return yield* new InvalidInput({
              detail: `labels: a workspace has at most ${MAX_LABELS} labels (this update would give it ${Object.keys(labels).length})`
            })
          }
          const updated: WorkspaceRecord = {
            ...record,
            name: input.clear_name ? null : input.name ?? record.name,
            labels,
            ...(input.ttl_seconds === undefined
              ? {}
              : { ttl_seconds: input.ttl_seconds, expires_at: iso(Date.now() + input.ttl_seconds * 1000) })
          }
          yield* writeWorkspace(stateDir, updated).pipe(Effect.orDie)
          return summaryOf(updated)
        }))
    }).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.update"))

  const reapExpired = Effect.gen(function*() {
    const now = Date.now()
    const reaped: Array<{ kind: "workspace"; id: string; environment: string; expired_at: string }> = []
    for (const record of yield* listWorkspaces(stateDir)) {
      if (Date.parse(record.expires_at) > now) continue
      const result = yield* remove(record.id)
      if (result.deleted) reaped.push({ kind: "workspace", id: record.id, environment: record.environment, expired_at: record.expires_at })
    }
    return { reaped, count: reaped.length }
  }).pipe(Effect.provide(context))

  /** A workspace's VM gone at once, what it had in memory thrown away: forwarders, QEMU, RAM file. */
  const discardVm = (id: string, vmm: WorkspaceRecord["vmm"]) =>
    Effect.asVoid(Effect.suspend(() => {
      const paths = workspacePaths(stateDir, id)
      stopAllForwarders(paths.dir)
      return Effect.zipRight(detached.kill({ vmm, dir: paths.dir }), removeRam(paths.ram))
    }))

  const snapshots = makeSnapshots({
    stateDir,
    locked,
    withConnection,
    ensureRunning: (record) => ensureRunning(record),
    discardVm: (record) => discardVm(record.id, record.vmm)
  })

  const forks = makeFork({
    stateDir,
    locked,
    resume: (record, state) => locked(record.id, (current) => ensureRunning(current, { resumeFrom: state })),
    discard: (id) => discardVm(id, null)
  })
  const fork = (input: WorkspaceForkInput) =>
    Effect.map(forks.fork(input), summaryOf).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.fork"))

  const snapshotCreate = (id: string, name: string) =>
    snapshots.create(id, name).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.snapshotCreate"))
  const snapshotList = (id: string) => Effect.map(getRecord(id), snapshots.list).pipe(Effect.provide(context))
  const snapshotDelete = (id: string, name: string) => snapshots.remove(id, name).pipe(Effect.provide(context))
  const reset = (id: string, name: string) =>
    Effect.map(snapshots.reset(id, name), summaryOf).pipe(Effect.provide(context), Effect.withSpan("WorkspaceManager.reset"))

  return WorkspaceManager.of({
    snapshotCreate,
    snapshotList,
    snapshotDelete,
    reset,
    fork,
    create,
    syncPush,
    exec,
    status,
    logs,
    stop,
    start,
    remove,
    list,
    update,
    reapExpired,
    withGuest,
    withStoppedDisk
  })
})

export const WorkspaceManagerLive = Layer.scoped(WorkspaceManager, make)
