/** What a checking pass accepted, counted: the summary an import reports before it sends anything. */
import type { SafeEntry } from "./policy.js"

export interface EntryTally {
  readonly files: number
  readonly directories: number
  readonly symlinks: number
  readonly hardlinks: number
  /** Regular-file content bytes. */
  readonly bytes: number
  /** Entries (normalised paths) whose setuid/setgid bits were cleared. */
  readonly neutralised: ReadonlyArray<string>
}

/** A tally to `add` accepted entries to; `tally` reads the counts so far. */
export const makeTally = () => {
  const counts = { files: 0, directories: 0, symlinks: 0, hardlinks: 0, bytes: 0, neutralised: [] as Array<string> }
  const add = (entry: SafeEntry, neutralised: boolean) => {
    switch (entry.type) {
      case "file":
        counts.files++
        counts.bytes += entry.size
        break
      case "directory":
        counts.directories++
        break
      case "symlink":
        counts.symlinks++
        break
      case "hardlink":
        counts.hardlinks++
        break
    }
    if (neutralised) counts.neutralised.push(entry.path)
  }
  return { add, tally: (): EntryTally => ({ ...counts, neutralised: [...counts.neutralised] }) }
}
