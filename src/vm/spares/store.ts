/**
 * Spare VMs on disk: restored, attached and warmed VMs that wait in the state
 * directory for a `vm_run` of their shape, claimed by whichever pyro process
 * comes first. No daemon keeps them: every step is a file operation any process
 * can do, and each ends in a state the next process can read.
 *
 *   <stateDir>/spares/<key>/target.json   how many the operator wants of this shape (`pyro prepare --spares`)
 *   <stateDir>/spares/<key>/<id>/         one spare: spare.json and the VM's files (vmDir.ts names)
 *   <stateDir>/spares/index/<hash>.json   which key a request shape maps to, for the lean `pyro run` (shapeIndex.ts)
 *
 * A claim renames the spare's directory to `vms/<id>`: rename is atomic, so of
 * two claimers exactly one gets it, and a spare is used once. Its unix sockets
 * are found by path, so they move with it. A reap renames it out of the way the
 * same way before killing it, so a reap and a claim never both win.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Order from "effect/Order"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { entriesIfAny, readTextIfAny } from "../../host/maybeRead.js"
import * as Path from "node:path"
import { writeFileAtomic } from "../../host/files.js"
import { ProcessId } from "../../machine/record.js"
import type { BootSpec } from "../../services/Vmm.js"
import { isAlive, type ProcessIdentity } from "../procfs.js"
import { killGroup } from "../qemu/process.js"
import { isVmmProcess, qemusUsing } from "../vmmIdentity.js"
import { TEMPLATE_FORMAT } from "../template.js"
import { type VmPaths, vmFilesIn, vmPaths, vmsRoot } from "../vmDir.js"

/** Bumped when a spare of an older pyro must not be claimed by this one. */
const SPARE_FORMAT = 1

/** Spares of one shape: a few absorb bursts; more would only hold memory. */
export const MAX_SPARES_PER_SHAPE = 8
export const clampSpares = (n: number) => Math.min(MAX_SPARES_PER_SHAPE, Math.max(0, Math.floor(n)))

/**
 * The most spares of every shape together, whoever asked (a tool caller picks
 * the shapes a process with spares runs), in number and in guest memory.
 */
export const MAX_SPARES_TOTAL = 16
export const MAX_SPARES_MEM_MIB = 8192

export const SPARE_RECORD = "spare.json"
const TARGET = "target.json"

/** What a spare is for: the sizing of the `vm_run` that may claim it. */
export const SpareShape = Schema.Struct({
  environment: Schema.String,
  vcpu_count: Schema.Int,
  mem_mib: Schema.Int
})
export type SpareShape = typeof SpareShape.Type

export const SpareRecord = Schema.Struct({
  id: Schema.String,
  shape: SpareShape,
  /** booting: its filler is making it (and, if that filler is gone, it is debris); ready: claimable. */
  state: Schema.Literal("booting", "ready"),
  filler: ProcessId,
  vmm: Schema.NullOr(ProcessId),
  created_at: Schema.String
})
export type SpareRecord = typeof SpareRecord.Type

const TargetRecord = Schema.Struct({ shape: SpareShape, count: Schema.Int })
type TargetRecord = typeof TargetRecord.Type

const encodeRecord = Schema.encodeSync(Schema.parseJson(SpareRecord, { space: 2 }))
export const decodeSpareRecord = Schema.decodeUnknownOption(Schema.parseJson(SpareRecord))
const encodeTarget = Schema.encodeSync(Schema.parseJson(TargetRecord))
const decodeTarget = Schema.decodeUnknownOption(Schema.parseJson(TargetRecord))

/**
 * The key of the spares a VM of `spec` may use: everything its guest was made
 * from (the template's inputs) and its sizing. Undefined: no spare can serve it
 * (a network, which lives in the VM's directory and cannot move with a claim;
 * more than one channel; no template inputs).
 */
/** What a spare's key takes from the host's config besides the spec: a spare made otherwise serves no run here. */
export interface SpareHost {
  readonly scratchMib: number
  /** The QEMU binary's real path: every kill of a spare checks it, so a spare of another QEMU is never claimed. */
  readonly qemu: string | undefined
  readonly accel: string
  readonly templates: boolean
}

export const spareHostOf = (
  config: { readonly scratchMib: number; readonly accel: string; readonly templates: boolean },
  qemu: string | undefined
): SpareHost => ({ scratchMib: config.scratchMib, qemu, accel: config.accel, templates: config.templates })

export const spareKey = (spec: BootSpec, host: SpareHost): string | undefined => {
  if (spec.network || (spec.channels ?? 1) !== 1 || spec.template === undefined) return undefined
  return createHash("sha256")
    .update(JSON.stringify([
      SPARE_FORMAT,
      // How guests start (kernel command line, machine options): a new format, new spares.
      TEMPLATE_FORMAT,
      spec.template,
      spec.kernel,
      spec.initrd,
      spec.rootImage,
      spec.vcpus,
      spec.memMib,
      host.scratchMib,
      host.qemu ?? null,
      host.accel,
      host.templates
    ]))
    .digest("hex")
    .slice(0, 16)
}

export const sparesRoot = (stateDir: string) => Path.join(stateDir, "spares")

/** The lock a shape's filler holds while it works (and `--spares 0` waits for). */
export const spareFillLock = (key: string) => `spares/${key}`
const shapeDir = (stateDir: string, key: string) => Path.join(sparesRoot(stateDir), key)

/** A spare's files: a VM's, in its directory under its shape's. */
export const sparePaths = (stateDir: string, key: string, id: string): VmPaths => {
  const dir = Path.join(shapeDir(stateDir, key), id)
  return { id, dir, record: Path.join(dir, SPARE_RECORD), ...vmFilesIn(dir) }
}

const ID = /^[0-9a-f]{12}$/
const KEY = /^[0-9a-f]{16}$/



export const writeSpareRecord = (paths: VmPaths, record: SpareRecord) =>
  writeFileAtomic(paths.record, encodeRecord(record), 0o600, false)

export interface SpareEntry {
  readonly key: string
  readonly dir: string
  /** None: no readable record (being made, or debris). */
  readonly record: Option.Option<SpareRecord>
}

/** Every spare of `key`, or of every shape. */
export const listSpares = (stateDir: string, key?: string): Array<SpareEntry> => {
  const keys = key === undefined ? entriesIfAny(sparesRoot(stateDir)).filter((k) => KEY.test(k)) : [key]
  return keys.flatMap((k) =>
    entriesIfAny(shapeDir(stateDir, k)).filter((id) => ID.test(id)).map((id) => {
      const dir = Path.join(shapeDir(stateDir, k), id)
      return { key: k, dir, record: readRecordIn(dir) }
    })
  )
}

const isReady = (record: SpareRecord): record is SpareRecord & { vmm: ProcessIdentity } =>
  record.state === "ready" && record.vmm !== null && isAlive(record.vmm)

/** Spares ready or being made: what counts towards a shape's target and the total. */
const isLive = (entry: SpareEntry) =>
  Option.match(entry.record, {
    onNone: () => false,
    onSome: (r) => r.state === "ready" ? isReady(r) : isAlive(r.filler)
  })

export const countSpares = (stateDir: string, key?: string) => listSpares(stateDir, key).filter(isLive).length

/** Whether one more spare of `shape` stays within the bounds on all spares together. */
export const roomForSpare = (stateDir: string, shape: SpareShape) => {
  const live = listSpares(stateDir).filter(isLive)
  const memMib = live.reduce((sum, e) => sum + Option.match(e.record, { onNone: () => 0, onSome: (r) => r.shape.mem_mib }), 0)
  return live.length < MAX_SPARES_TOTAL && memMib + shape.mem_mib <= MAX_SPARES_MEM_MIB
}

/**
 * Claim a ready spare of `key`: its directory becomes `vms/<id>` and it is the
 * caller's. The oldest first, so the ones left are the freshest.
 */
export const claimSpare = (stateDir: string, key: string): Option.Option<{ readonly id: string; readonly vmm: ProcessIdentity }> => {
  const ready = listSpares(stateDir, key)
    .flatMap((e) => Option.isSome(e.record) && isReady(e.record.value) ? [{ dir: e.dir, record: e.record.value }] : [])
    // ISO times sort as strings; localeCompare would load ICU's collator first (~20 ms, in the lean run).
    .sort((a, b) => Order.string(a.record.created_at, b.record.created_at))
  if (ready.length === 0) return Option.none()
  Fs.mkdirSync(vmsRoot(stateDir), { recursive: true, mode: 0o700 })
  for (const { dir, record } of ready) {
    try {
      Fs.renameSync(dir, vmPaths(stateDir, record.id).dir)
      return Option.some({ id: record.id, vmm: record.vmm })
    } catch {
      // Another process claimed or reaped it first.
    }
  }
  return Option.none()
}

/** Kill a spare's QEMU (proved to be it) and any a cut-short boot left naming `dir`, then remove `dir`. */
const destroy = (dir: string, record: Option.Option<SpareRecord>, qemu: string | undefined, namedDir = dir) => {
  const vmm = Option.getOrNull(Option.flatMap(record, (r) => Option.fromNullable(r.vmm)))
  if (vmm !== null && isVmmProcess(vmm, qemu)) killGroup(vmm.pid, "SIGKILL")
  for (const other of qemusUsing(namedDir, qemu)) killGroup(other.pid, "SIGKILL")
  Fs.rmSync(dir, { recursive: true, force: true })
}

const readRecordIn = (dir: string) => Option.flatMap(readTextIfAny(Path.join(dir, SPARE_RECORD)), decodeSpareRecord)

/** Destroy a spare its filler could not finish. */
export const discardSpare = (dir: string, qemu: string | undefined) => destroy(dir, readRecordIn(dir), qemu)

/** Take a spare out of reach of claims (rename, as a claim does), then destroy it; false if a claim won. */
const reapOne = (entry: SpareEntry, qemu: string | undefined) => {
  const aside = Path.join(Path.dirname(entry.dir), `.reaped-${Path.basename(entry.dir)}`)
  try {
    Fs.renameSync(entry.dir, aside)
  } catch {
    return false
  }
  destroy(aside, entry.record, qemu, entry.dir)
  return true
}

/** A spare whose directory has no record yet is given this long: its filler may be writing it. */
const RECORD_GRACE_MS = 60_000

const ageMs = (dir: string, now: number) => {
  try {
    const s = Fs.statSync(dir)
    return now - Math.max(s.mtimeMs, s.ctimeMs)
  } catch {
    return 0
  }
}

/** A ready spare no run claimed for `idleMs` is reaped, and not claimed meanwhile by a run that does no reaping. */
export const pastIdle = (record: SpareRecord, idleMs: number, now: number) => now - Date.parse(record.created_at) > idleMs

/** The operator's idle limit on spares (`PYRO_SPARE_IDLE_SECONDS`). */
export const spareIdleMs = (config: { readonly spareIdleSeconds: number }) => config.spareIdleSeconds * 1000

/** What every start, filler and periodic reap does: the idle, dead and half-made spares go. */
export const reapIdleSpares = (config: { readonly stateDir: string; readonly spareIdleSeconds: number }, qemu: string | undefined) =>
  reapSpares(config.stateDir, { idleMs: spareIdleMs(config), qemu })

export interface ReapOptions {
  /** Ready spares older than this go. */
  readonly idleMs: number
  /** The QEMU binary's real path (only a process running it is killed). */
  readonly qemu: string | undefined
  /** Only this shape's. */
  readonly key?: string
  /** Every spare, however young. */
  readonly all?: boolean
  readonly now?: number
}

/**
 * Reap what no one will claim: spares idle past the limit, ones whose QEMU
 * died, and ones whose filler was killed while making them. Their ids.
 */
export const reapSpares = (stateDir: string, options: ReapOptions) =>
  Effect.sync(() => {
    const now = options.now ?? Date.now()
    const reaped: Array<string> = []
    for (const entry of listSpares(stateDir, options.key)) {
      const dead = Option.match(entry.record, {
        onNone: () => ageMs(entry.dir, now) > RECORD_GRACE_MS,
        onSome: (r) =>
          r.state === "ready"
            ? !isReady(r) || pastIdle(r, options.idleMs, now)
            : !isAlive(r.filler)
      })
      if ((options.all || dead) && reapOne(entry, options.qemu)) reaped.push(Path.basename(entry.dir))
    }
    // Leftovers of a reaper killed between its rename and its removal.
    for (const key of options.key === undefined ? entriesIfAny(sparesRoot(stateDir)).filter((k) => KEY.test(k)) : [options.key]) {
      for (const name of entriesIfAny(shapeDir(stateDir, key))) {
        if (!name.startsWith(".reaped-")) continue
        const dir = Path.join(shapeDir(stateDir, key), name)
        destroy(dir, readRecordIn(dir), options.qemu)
      }
    }
    return reaped
  })

/** The operator's count for a shape (`pyro prepare ENV --spares N`); 0 when none was set. */
export const readTarget = (stateDir: string, key: string): number =>
  Option.match(Option.flatMap(readTextIfAny(Path.join(shapeDir(stateDir, key), TARGET)), decodeTarget), {
    onNone: () => 0,
    onSome: (t) => t.count
  })

export const writeTarget = (stateDir: string, key: string, shape: SpareShape, count: number) =>
  Effect.suspend(() => {
    if (count === 0) {
      Fs.rmSync(Path.join(shapeDir(stateDir, key), TARGET), { force: true })
      return Effect.void
    }
    Fs.mkdirSync(shapeDir(stateDir, key), { recursive: true, mode: 0o700 })
    return writeFileAtomic(Path.join(shapeDir(stateDir, key), TARGET), encodeTarget({ shape, count }), 0o600)
  })

/** What `doctor` shows: per shape, its spares and target. */
export const sparesReport = (stateDir: string) => {
  const byKey = new Map<string, { shape: SpareShape | undefined; ready: number; booting: number; target: number }>()
  const keys = entriesIfAny(sparesRoot(stateDir)).filter((k) => KEY.test(k))
  for (const key of keys) {
    const target = Option.getOrUndefined(Option.flatMap(readTextIfAny(Path.join(shapeDir(stateDir, key), TARGET)), decodeTarget))
    byKey.set(key, { shape: target?.shape, ready: 0, booting: 0, target: target?.count ?? 0 })
  }
  for (const entry of listSpares(stateDir)) {
    if (!isLive(entry) || Option.isNone(entry.record)) continue
    const row = byKey.get(entry.key)!
    row.shape ??= entry.record.value.shape
    if (entry.record.value.state === "ready") row.ready++
    else row.booting++
  }
  return [...byKey.entries()]
    .filter(([, row]) => row.shape !== undefined && (row.ready + row.booting + row.target) > 0)
    .map(([key, row]) => ({ key, ...row.shape!, ready: row.ready, booting: row.booting, target: row.target }))
}
