/**
 * Proving a process is a VM's QEMU before killing it: its pid, its start time
 * (a recycled pid has another) and its executable (the QEMU binary, not any
 * process whose command line happens to name the VM's directory).
 */
import * as Fs from "node:fs"
import { which } from "../host/which.js"
import { commandLine, isAlive, processStartTime, type ProcessIdentity } from "./procfs.js"

/** The real path of the QEMU binary `name` (PYRO_QEMU) resolves to, or undefined if none is installed. */
export const qemuExecutable = (name: string): string | undefined => {
  const found = name.includes("/") ? name : which(name)
  if (!found) return undefined
  try {
    return Fs.realpathSync(found)
  } catch {
    return undefined
  }
}

/** The executable `pid` runs ("(deleted)" dropped: an upgraded binary is still the one that started). */
const executableOf = (pid: number): string | undefined => {
  try {
    return Fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "")
  } catch {
    return undefined
  }
}

/** `who` is alive, is the process that started then, and runs `qemu`. */
export const isVmmProcess = (who: ProcessIdentity, qemu: string | undefined): boolean =>
  qemu !== undefined && isAlive(who) && executableOf(who.pid) === qemu

/**
 * Live QEMU processes whose command line names `dir/`: for deletes, a boot
 * cut short (its caller killed with -9 between spawning QEMU and recording it)
 * leaves a QEMU no record names.
 */
export const qemusUsing = (dir: string, qemu: string | undefined): Array<ProcessIdentity> => {
  const needle = `${dir}/`
  const found: Array<ProcessIdentity> = []
  for (const name of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (!commandLine(pid).includes(needle)) continue
    const startTime = processStartTime(pid)
    if (startTime !== undefined && isVmmProcess({ pid, startTime }, qemu)) found.push({ pid, startTime })
  }
  return found
}
