/** Telling live processes from recycled pids, through /proc. */
import * as Fs from "node:fs"

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined if gone. */
export const processStartTime = (pid: number): number | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : undefined
  } catch {
    return undefined
  }
}

export interface ProcessIdentity {
  readonly pid: number
  readonly startTime: number
}

export const selfIdentity = (): ProcessIdentity => ({
  pid: process.pid,
  startTime: processStartTime(process.pid) ?? 0
})

/** A zombie has exited; it only waits to be reaped (by init, which may be slow to, or by us). */
const isZombie = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z"
  } catch {
    return false
  }
}

export const isAlive = (who: ProcessIdentity): boolean =>
  processStartTime(who.pid) === who.startTime && !isZombie(who.pid)

/** The NUL-separated command line of `pid`, or "" if gone. */
export const commandLine = (pid: number): string => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
  } catch {
    return ""
  }
}
