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

/** PF_EXITING in the kernel's task flags (field 9 of /proc/<pid>/stat). */
const PF_EXITING = 0x4

/**
 * Whether `who` is that very process and still running, from one reading of
 * /proc/<pid>/stat (two could straddle its exit): the start time must match
 * (a recycled pid never passes), and it must be neither a zombie (exited,
 * waiting to be reaped) nor exiting (its files, locks included, already
 * closed though it is not a zombie yet).
 */
export const isAlive = (who: ProcessIdentity): boolean => {
  let stat: string
  try {
    stat = Fs.readFileSync(`/proc/${who.pid}/stat`, "utf8")
  } catch {
    return false
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const state = fields[0]
  return Number(fields[19]) === who.startTime && state !== "Z" && state !== "X" && (Number(fields[6]) & PF_EXITING) === 0
}

/** The NUL-separated command line of `pid`, or "" if gone. */
export const commandLine = (pid: number): string => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
  } catch {
    return ""
  }
}
