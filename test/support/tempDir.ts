/** A temporary directory for one test, removed however the test ends (pass, failure, timeout). */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export const scopedTempDir = (prefix: string) =>
  Effect.acquireRelease(
    // Under the run's root when there is one, which the global teardown removes even if this release never runs.
    Effect.sync(() => Fs.mkdtempSync(Path.join(process.env.PYRO_TEST_RUN_ROOT ?? Os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
