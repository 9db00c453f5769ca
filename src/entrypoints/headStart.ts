/**
 * `dist/headStart.cjs`: starts a simple `pyro run`'s QEMU from its shape's plan
 * (src/vm/headStart/recipe.ts) before bin/pyro.js loads the CLI, so the guest
 * boots (or restores) while the CLI loads and sets up: ~0.2 s of a run that
 * no spare serves. The CLI adopts that QEMU only if it would have started the
 * same one (same recipe, same input files); otherwise, and if it never gets that
 * far (a refusal, an error, a spare after all), it is killed and its directory
 * removed. Everything here is synchronous up to QEMU's start: the CLI's loading
 * blocks the event loop next.
 *
 * A VM started here is in `vms/<id>/` with an ephemeral record naming this
 * process: the start-up sweep leaves it to us while we live and removes it
 * after a kill -9, and the limit does not count it until the CLI claims its slot.
 * QEMU dies with us (setpriv --pdeathsig, in the recipe).
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DEFAULT_MAX_ACTIVE_VMS } from "../machine/defaults.js"
import { processStartTime } from "../vm/procfs.js"
import { EXIT_WAIT_MS, killGroup, STDERR_TAIL_BYTES } from "../vm/qemu/processBasics.js"
import {
  inputsUnchanged,
  offerHeadStart,
  planFileFor,
  readPlan,
  recipeFor,
  type StartedVm
} from "../vm/headStart/recipe.js"

/** Six random bytes in hex, as newMachineId makes them, without loading node:crypto. */
const newId = () => {
  const bytes = Buffer.alloc(6)
  const fd = Fs.openSync("/dev/urandom", "r")
  try {
    Fs.readSync(fd, bytes, 0, 6, null)
  } finally {
    Fs.closeSync(fd)
  }
  return bytes.toString("hex")
}

const debug = (line: string) => {
  if (process.env.PYRO_DEBUG_PATH === "1") process.stderr.write(`pyro-debug: ${line}\n`)
}

/** Start this process's head start for `input` (a simple `pyro run`'s fields) in `stateDir`, and offer it to the CLI. */
export const startHead = (stateDir: string, input: { readonly environment: unknown; readonly vcpu_count?: unknown; readonly mem_mib?: unknown }) => {
  const planFile = planFileFor(stateDir, input)
  const launched = launch(planFile, stateDir)
  let state: "running" | "claimed" | "adopted" | "discarded" = "running"
  let discarded: Promise<void> | undefined
  const kill = () => {
    for (const child of launched?.children ?? []) {
      if (child.exitCode === null && child.signalCode === null) killGroup(child.pid!, "SIGKILL")
    }
  }
  if (launched) {
    debug(`head start ${launched.vm.id}`)
    // Whatever happens in the CLI, nothing started here outlives this process: once the CLI
    // took the QEMU over, its scope ends it (or, cut short, the parent-death signal and the next sweep).
    process.once("exit", () => {
      if (state === "adopted") return
      kill()
      Fs.rmSync(launched.vm.dir, { recursive: true, force: true })
    })
  }
  offerHeadStart({
    planFile,
    started: launched?.vm,
    claimed: () => void (state = state === "running" ? "claimed" : state),
    adopt: () => {
      if (!launched || state === "adopted" || state === "discarded" || !launched.vm.healthy()) return undefined
      state = "adopted"
      debug(`head start ${launched.vm.id} taken over (QEMU ${launched.vm.pid})`)
      return launched.vm
    },
    discard: () =>
      (discarded ??= (async () => {
        if (!launched || state === "adopted") return
        const claimed = state === "claimed"
        state = "discarded"
        debug(`head start ${launched.vm.id} not used`)
        kill()
        await Promise.race([
          Promise.all([launched.vm.exited, launched.vm.formatted]),
          new Promise((resolve) => setTimeout(resolve, EXIT_WAIT_MS).unref())
        ])
        try {
          if (!claimed) Fs.rmSync(launched.vm.dir, { recursive: true, force: true })
          // The run goes on in this directory with a QEMU of its own: nothing of this one's may mislead it.
          else for (const name of Fs.readdirSync(launched.vm.dir)) if (!KEPT_WHEN_CLAIMED.has(name)) Fs.rmSync(Path.join(launched.vm.dir, name), { recursive: true, force: true })
        } catch {
          // The claim's release or the next sweep removes what is left.
        }
      })())
  })
}

/** A claimed directory's own files: the run's record and its boot claim (src/vm/runClaim.ts). */
const KEPT_WHEN_CLAIMED = new Set(["vm.json", "boot-claim.json"])

/** QEMU (and mkfs) started from the plan, or undefined with nothing left behind. */
const launch = (planFile: string, stateDir: string) => {
  const plan = readPlan(planFile)
  if (!plan || !inputsUnchanged(plan.inputs)) return undefined
  const id = newId()
  const dir = Path.join(stateDir, "vms", id)
  const children: Array<ChildProcess.ChildProcess> = []
  try {
    const recipe = recipeFor(plan.recipe, id)
    Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    if (!roomFor(stateDir)) throw new Error("no room")
    if (recipe.scratch._tag === "create") {
      Fs.writeFileSync(recipe.scratch.path, "")
      Fs.truncateSync(recipe.scratch.path, recipe.scratch.bytes)
    } else {
      const [command, ...args] = recipe.scratch.command
      if (ChildProcess.spawnSync(command!, args, { stdio: "ignore" }).status !== 0) throw new Error("scratch copy")
      Fs.chmodSync(recipe.scratch.command.at(-1)!, 0o600)
    }
    // QEMU first: the guest's boot is what the run waits for, and it touches the disk only at attach, after mkfs.
    const vmm = spawnChild(recipe.vmm, "pipe")
    children.push(vmm)
    const format = recipe.format ? spawnChild(recipe.format, "ignore") : undefined
    if (format) children.push(format)
    if (vmm.pid === undefined || (format && format.pid === undefined)) throw new Error("spawn")
    let stderr = ""
    vmm.stderr?.setEncoding("utf8")
    vmm.stderr?.on("data", (chunk: string) => void (stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)))
    writeRecord(dir, id, vmm.pid)
    const vm: StartedVm = {
      id,
      dir,
      recipe,
      inputs: plan.inputs,
      pid: vmm.pid,
      spawnedAt: Date.now(),
      exited: exitOf(vmm).then(([code, signal]) => ({ code, signal })),
      stderrTail: () => stderr,
      formatted: format ? exitOf(format).then(([code]) => code) : undefined,
      healthy: () => running(vmm) && (format === undefined || running(format) || format.exitCode === 0)
    }
    // The plan's time is when it was last used: pruning keeps the plans in use.
    const now = new Date()
    Fs.utimesSync(planFile, now, now)
    return { vm, children }
  } catch {
    // Anything off: no head start, and nothing of it left.
    for (const child of children) if (child.pid !== undefined) killGroup(child.pid, "SIGKILL")
    Fs.rmSync(dir, { recursive: true, force: true })
    return undefined
  }
}

const running = (child: ChildProcess.ChildProcess) => child.exitCode === null && child.signalCode === null

/**
 * Whether a head start may start a QEMU now: its VM exists before the CLI checks the
 * active-VM limit, so a burst of runs must not start more than the limit at once. Every
 * directory in `vms/` (its own included, made just before) counts, whether it holds a slot
 * or not: a bound, not the census, which the CLI does.
 */
const roomFor = (stateDir: string) => {
  const limit = Number.parseInt(process.env.PYRO_MAX_ACTIVE_VMS ?? "", 10)
  const vms = Fs.readdirSync(Path.join(stateDir, "vms")).filter((name) => !name.startsWith("."))
  return vms.length <= (Number.isSafeInteger(limit) ? limit : DEFAULT_MAX_ACTIVE_VMS)
}

const spawnChild = (argv: ReadonlyArray<string>, stderr: "ignore" | "pipe") => {
  const child = ChildProcess.spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", stderr], detached: true })
  // A command that cannot start says so as an event (and has no pid); its exit settles what waits on it.
  child.on("error", () => {})
  // Never what keeps this process alive: the CLI ends it.
  child.unref()
  ;(child.stderr as { unref?: () => void } | null)?.unref?.()
  return child
}

const exitOf = (child: ChildProcess.ChildProcess) =>
  new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve([child.exitCode, child.signalCode])
    child.once("exit", (code, signal) => resolve([code, signal]))
    child.once("error", () => resolve([null, null]))
  })

/** The ephemeral record (src/vm/vmDir.ts) naming this process as the owner and QEMU by its identity. */
const writeRecord = (dir: string, id: string, vmmPid: number) => {
  const record = {
    id,
    kind: "ephemeral",
    owner: { pid: process.pid, startTime: processStartTime(process.pid) ?? 0 },
    vmmPid,
    vmmStartTime: processStartTime(vmmPid) ?? 0,
    createdAt: new Date().toISOString()
  }
  const path = Path.join(dir, "vm.json")
  Fs.writeFileSync(`${path}.tmp`, JSON.stringify(record, null, 2), { mode: 0o600 })
  Fs.renameSync(`${path}.tmp`, path)
}
