/**
 * A VM's RAM as a file of its own (workspaces: VmPaths.ram), mapped shared so
 * that the guest's memory is the file: a fork copies it while the VM is
 * paused, and the copy is the fork's RAM. Copies are sparse: only the pages a
 * guest (or the template it came from) touched take room or time.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { runHostCommand } from "../host/command.js"
import { BootError } from "./errors.js"

/**
 * On the host's tmpfs (a RAM file there is memory, never written back to a
 * disk), in a directory of this user's own: /dev/shm is writable by every
 * user, and a name there that someone else made first (a symlink) must never
 * be written through.
 */
export const RAM_DIR = `/dev/shm/pyro-ram-${process.getuid?.() ?? 0}`

/** RAM_DIR made (0700) if need be, and refused unless it is a real directory only this user can use. */
const privateDir = (dir: string) => {
  Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const stat = Fs.lstatSync(dir)
  if (!stat.isDirectory() || stat.uid !== (process.getuid?.() ?? 0) || (stat.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a directory of this user's alone (mode 0700); remove it`)
  }
}

const ramFailure = (e: { readonly message: string }) => new BootError({ stage: "Prepare", detail: `RAM file: ${e.message}` })

/** `to` as a sparse copy of `from` (a template's RAM, or a paused VM's), private to its owner. */
export const copyRam = (from: string, to: string) =>
  Effect.try({
    try: () => {
      privateDir(Path.dirname(to))
      Fs.rmSync(to, { force: true })
    },
    catch: (e) => e as Error
  }).pipe(
    Effect.zipRight(runHostCommand("cp", ["--sparse=always", "--", from, to])),
    Effect.zipRight(Effect.sync(() => Fs.chmodSync(to, 0o600))),
    Effect.mapError(ramFailure)
  )

/** An empty RAM file of `memMib` (a cold boot fills it). */
export const emptyRam = (path: string, memMib: number) =>
  Effect.try({
    try: () => {
      privateDir(Path.dirname(path))
      Fs.rmSync(path, { force: true })
      Fs.writeFileSync(path, new Uint8Array(), { mode: 0o600 })
      Fs.truncateSync(path, memMib * 1024 * 1024)
    },
    catch: (e) => ramFailure(e as Error)
  })

/** Gone with its VM (stop, delete, reset). */
export const removeRam = (path: string | undefined) =>
  Effect.sync(() => {
    if (path !== undefined) Fs.rmSync(path, { force: true })
  })

/**
 * Every file in `dir` a process maps right now, as /proc says. Only QEMU maps
 * a RAM file (and the sweep's test, a loader): other processes' maps, the
 * bulk of the cost at start-up, are not read.
 */
const mappedFiles = (dir: string, by: (comm: string) => boolean = isVmm): ReadonlySet<string> => {
  const mapped = new Set<string>()
  for (const pid of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    let maps = ""
    try {
      if (!by(Fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim())) continue
      maps = Fs.readFileSync(`/proc/${pid}/maps`, "utf8")
    } catch {
      continue // gone, or not ours to read
    }
    for (const line of maps.split("\n")) {
      const at = line.indexOf(`${dir}/`)
      if (at >= 0) mapped.add(line.slice(at).replace(/ \(deleted\)$/, ""))
    }
  }
  return mapped
}

/** QEMU's thread name as the kernel keeps it (15 characters of `qemu-system-x86_64`). */
const isVmm = (comm: string) => comm.startsWith("qemu-system")

/** Old enough that no boot can be between making it and QEMU mapping it. */
const ORPHAN_AGE_MS = 5 * 60 * 1000

/**
 * RAM files no process maps any more, left by a workspace VM killed from
 * outside (or a state directory removed by hand): deleted. Run at start-up
 * with the other sweeps; a file younger than `minAgeMs` may belong to a boot
 * in progress and is left alone (the tests' teardown, with no boot left, passes 0).
 * `mappers`: which processes may map one, by name (QEMU's; a test names its own).
 */
export const sweepOrphanRam = (dir: string, minAgeMs = ORPHAN_AGE_MS, mappers?: (comm: string) => boolean) =>
  Effect.sync(() => {
    let names: Array<string> = []
    try {
      names = Fs.readdirSync(dir).filter((n) => /^[0-9a-f]{16}$/.test(n))
    } catch {
      return
    }
    const old = names.map((name) => `${dir}/${name}`).filter((path) => {
      const stat = Fs.lstatSync(path, { throwIfNoEntry: false })
      return stat?.isFile() === true && Date.now() - stat.mtimeMs >= minAgeMs
    })
    // /proc is read only when some file could be an orphan.
    if (old.length === 0) return
    const mapped = mappedFiles(dir, mappers)
    for (const path of old) {
      if (mapped.has(path)) continue
      try {
        Fs.rmSync(path, { force: true })
      } catch {
        // Someone else's to clean up: a sweep never stops a start.
      }
    }
  })
