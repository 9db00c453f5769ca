/**
 * `dist/runSpare.cjs`: the lean `pyro run` (src/vm/spares/serveRun.ts), loaded by
 * bin/pyro.js before the CLI for the simple forms of `pyro run`; the CLI runs
 * only when it answers "not served".
 */
export { serveRun } from "../vm/spares/serveRun.js"
