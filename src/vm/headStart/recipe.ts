/**
 * A head start for `pyro run`: how the full path started a one-shot run's VM
 * (its start recipe), kept per shape in the state directory so that the next
 * run of that shape starts QEMU from it before the CLI has even loaded
 * (src/entrypoints/headStart.ts), and the CLI then adopts that QEMU if, and
 * only if, it would have started the very same one (src/layers/QemuVmm.ts).
 *
 * Effect-free and small: bin/pyro.js loads it (dist/headStart.cjs) on every
 * simple `pyro run` before the CLI's bundle.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** What starts a one-shot VM, in order. Paths in `dir` name the VM by its id. */
export interface StartRecipe {
  /** The scratch disk: a sparse file of `bytes`, or a copy made by `command` (run to its end before QEMU starts). */
  readonly scratch:
    | { readonly _tag: "create"; readonly path: string; readonly bytes: number }
    | { readonly _tag: "copy"; readonly command: ReadonlyArray<string> }
  /** Run alongside QEMU's start and awaited before attach (mkfs on the created file), if any. */
  readonly format: ReadonlyArray<string> | undefined
  /** QEMU's whole command line, through setpriv (and perl, for RAM in a file). */
  readonly vmm: ReadonlyArray<string>
  /**
   * Every file outside the VM's directory that this start reads, the command lines' and
   * the QMP restore's alike: kernel, initramfs and root image; a template's RAM, device
   * state and scratch disk.
   */
  readonly inputs: ReadonlyArray<string>
}

/** A file the recipe reads, as it was when recorded. */
interface InputFile {
  readonly path: string
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
}

/** The plan on disk: a recipe with the VM's id as ID_MARK, and its inputs. */
interface HeadStartPlan {
  readonly version: 1
  readonly recipe: string
  readonly inputs: ReadonlyArray<InputFile>
}

/** A QEMU started from a plan, handed to the CLI (`takeHeadStart`). */
export interface StartedVm {
  readonly id: string
  readonly dir: string
  readonly recipe: StartRecipe
  /** The inputs as they were when QEMU started. */
  readonly inputs: ReadonlyArray<InputFile>
  readonly pid: number
  /** When it was spawned (Date.now()): its boot time counts from there. */
  readonly spawnedAt: number
  /** Resolves when QEMU has exited (already, maybe). */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** The last few KiB QEMU wrote on stderr. */
  readonly stderrTail: () => string
  /** The format command's exit status (null: killed, or it could not start); undefined without one. */
  readonly formatted: Promise<number | null> | undefined
  /** QEMU still running, and the format command running or done well: worth taking over. */
  readonly healthy: () => boolean
}

/** The head start of this process: where its shape's plan lives, and the QEMU started from it, if any. */
export interface HeadStart {
  readonly planFile: string
  readonly started: StartedVm | undefined
  /** The run's slot was claimed in its directory: the claim's release removes it now. */
  readonly claimed: () => void
  /** The started QEMU, once, for the CLI to take over (its scope ends it from then on); undefined if none or gone. */
  readonly adopt: () => StartedVm | undefined
  /**
   * Kill what was started and wait for it to exit (at most a few seconds), then remove its
   * directory, or once claimed its VM's files; nothing once adopted. Every call returns
   * the same promise, which never rejects.
   */
  readonly discard: () => Promise<void>
}

const ID_MARK = "{{vm-id}}"
/** PYRO_ variables that do not change how a VM starts: debug output, and what bin/pyro.js's first line sets for every run. */
const NOT_CONFIG = new Set(["PYRO_DEBUG_PATH", "PYRO_NODE_EXTRA_CA_CERTS"])
const HANDOFF = Symbol.for("pyro.headStart")

/**
 * Where a shape's plan lives: the simple `pyro run` forms only differ by these
 * three inputs (the command, the timeouts and the TTL do not change how the VM starts),
 * under one configuration (`PYRO_*`: a process with PYRO_COLD_BOOT=1 starts its VMs
 * otherwise, and should not undo the plan of one without).
 */
export const planFileFor = (
  stateDir: string,
  input: { readonly environment: unknown; readonly vcpu_count?: unknown; readonly mem_mib?: unknown },
  env: NodeJS.ProcessEnv = process.env
) => {
  const config = Object.keys(env).filter((name) => name.startsWith("PYRO_") && !NOT_CONFIG.has(name)).sort()
    .map((name) => [name, env[name]])
  const key = JSON.stringify([input.environment, input.vcpu_count ?? null, input.mem_mib ?? null, config])
  // FNV-1a: a file name, not a secret (node:crypto would cost a few ms on every start).
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193) >>> 0
  return Path.join(stateDir, "head-start", `${hash.toString(16).padStart(8, "0")}.json`)
}

/** The recipe as a plan's text, its id marked; undefined if the id cannot be told apart. */
const recipeText = (recipe: StartRecipe, id: string): string | undefined => {
  const text = JSON.stringify(recipe)
  return text.includes(ID_MARK) ? undefined : text.split(id).join(ID_MARK)
}

export const recipeFor = (text: string, id: string): StartRecipe => JSON.parse(text.split(ID_MARK).join(id))

export const sameRecipe = (a: StartRecipe, b: StartRecipe) => JSON.stringify(a) === JSON.stringify(b)

const identityOf = (path: string): InputFile | undefined => {
  const info = Fs.statSync(path, { throwIfNoEntry: false })
  return info?.isFile() ? { path, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs } : undefined
}

/** Whether every input is still the file it was. */
export const inputsUnchanged = (inputs: ReadonlyArray<InputFile>) =>
  inputs.every((input) => {
    const now = identityOf(input.path)
    return now !== undefined && now.ino === input.ino && now.size === input.size && now.mtimeMs === input.mtimeMs
  })

/** The recipe's inputs as they are now; undefined if one is missing (no plan is worth keeping then). */
const inputsOf = (recipe: StartRecipe): Array<InputFile> | undefined => {
  const inputs = recipe.inputs.map(identityOf)
  return inputs.every((input) => input !== undefined) ? inputs as Array<InputFile> : undefined
}

/**
 * A plan is a command line to run: only one this user wrote, that nobody else can
 * change (neither the file nor its directory writable by group or others).
 */
const ownedAndPrivate = (path: string) => {
  const info = Fs.lstatSync(path, { throwIfNoEntry: false })
  return info !== undefined && !info.isSymbolicLink() && info.uid === process.getuid?.() && (info.mode & 0o022) === 0
}

export const readPlan = (planFile: string): HeadStartPlan | undefined => {
  try {
    if (!ownedAndPrivate(Path.dirname(planFile)) || !ownedAndPrivate(planFile)) return undefined
    const plan = JSON.parse(Fs.readFileSync(planFile, "utf8"))
    return plan?.version === 1 && typeof plan.recipe === "string" && Array.isArray(plan.inputs) ? plan : undefined
  } catch {
    return undefined
  }
}

/** Record how this VM was started, for the next run of its shape (a failure only costs that head start). */
export const writePlan = (planFile: string, recipe: StartRecipe, id: string) => {
  const text = recipeText(recipe, id)
  const inputs = inputsOf(recipe)
  if (text === undefined || inputs === undefined) return
  const plan: HeadStartPlan = { version: 1, recipe: text, inputs }
  const existing = readPlan(planFile)
  if (existing && JSON.stringify(existing) === JSON.stringify(plan)) return
  try {
    Fs.mkdirSync(Path.dirname(planFile), { recursive: true, mode: 0o700 })
    const tmp = `${planFile}.${process.pid}.tmp`
    Fs.writeFileSync(tmp, JSON.stringify(plan), { mode: 0o600 })
    Fs.renameSync(tmp, planFile)
    prunePlans(Path.dirname(planFile))
  } catch {
    // A read-only state directory: no head start next time.
  }
}

/** Plans kept: one per shape and configuration run lately; the oldest beyond this go. */
const MAX_PLANS = 32

const prunePlans = (dir: string) => {
  const plans = Fs.readdirSync(dir).flatMap((name) => {
    const info = Fs.statSync(Path.join(dir, name), { throwIfNoEntry: false })
    return info ? [{ path: Path.join(dir, name), mtimeMs: info.mtimeMs }] : []
  })
  plans.sort((a, b) => b.mtimeMs - a.mtimeMs)
  for (const old of plans.slice(MAX_PLANS)) Fs.rmSync(old.path, { force: true })
}

/** For bin/pyro.js's head start: hand it to the CLI's runtime, in this process. */
export const offerHeadStart = (headStart: HeadStart) => {
  ;(globalThis as Record<symbol, unknown>)[HANDOFF] = headStart
}

/** The head start bin/pyro.js made for this process's `pyro run`, once; undefined anywhere else. */
export const takeHeadStart = (): HeadStart | undefined => {
  const slot = globalThis as Record<symbol, unknown>
  const headStart = slot[HANDOFF] as HeadStart | undefined
  delete slot[HANDOFF]
  return headStart
}
