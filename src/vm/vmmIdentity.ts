/**
 * Finding a VM's QEMU by its directory, for deletes: a boot cut short (its
 * caller killed with -9 between spawning QEMU and recording it) leaves a
 * QEMU that no record names, but whose command line names the directory.
 */
import * as Fs from "node:fs"
import { commandLine, isAlive, processStartTime, type ProcessIdentity } from "./procfs.js"

/** Live QEMU processes whose command line mentions `dir/`. */
export const qemusUsing = (dir: string): Array<ProcessIdentity> => {
  const needle = `${dir}/`
  const found: Array<ProcessIdentity> = []
  for (const name of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    const cmd = commandLine(pid)
    if (!cmd.includes("qemu-system") || !cmd.includes(needle)) continue
    const startTime = processStartTime(pid)
    if (startTime !== undefined && isAlive({ pid, startTime })) found.push({ pid, startTime })
  }
  return found
}
