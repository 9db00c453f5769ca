/** Guest C compiled natively for a test file: under ASan and UBSan, with the agent's own warnings as errors. */
import { afterAll, beforeAll } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const guest = Path.resolve(import.meta.dirname, "../../guest")

/** Compiles `sources` (paths under guest/) into the executable `out`, and returns `out`. */
export const compileGuestNative = (out: string, sources: ReadonlyArray<string>) => {
  execFileSync("gcc", ["-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined", "-o", out,
    ...sources.map((source) => Path.join(guest, source))])
  return out
}

/**
 * For the calling test file: a temporary `dir`, made before its tests and removed after them,
 * holding `tool`, compiled from `sources`. Read the fields inside tests (they are set in beforeAll).
 */
export const guestNativeTool = (name: string, sources: ReadonlyArray<string>) => {
  const made = { dir: "", tool: "" }
  beforeAll(() => {
    made.dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `pyro-${name}-`))
    made.tool = compileGuestNative(Path.join(made.dir, name), sources)
  })
  afterAll(() => Fs.rmSync(made.dir, { recursive: true, force: true }))
  return made as { readonly dir: string; readonly tool: string }
}
