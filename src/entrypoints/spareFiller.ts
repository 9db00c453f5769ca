/**
 * `node dist/spareFiller.cjs REQUEST`: fill one shape's spares and exit
 * (src/vm/spares/). Detached from the process that started it; its stderr is
 * `<stateDir>/spares/filler.log`.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { appLayer } from "../layers/App.js"
import { stderrLogger } from "../layers/StderrLogger.js"
import { ProgressSilent } from "../services/Progress.js"
import { fillSpares } from "../vm/spares/fill.js"
import { FillRequest } from "../vm/spares/spawnFiller.js"

const request = Schema.decodeUnknownSync(FillRequest)(process.argv[2])
const runtime = ManagedRuntime.make(appLayer(ProgressSilent))
runtime.runPromise(fillSpares(request.shape, request.want).pipe(Effect.provide(stderrLogger(false)))).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${new Date().toISOString()} spare filler (${request.shape.environment}): ${String(e)}\n`)
    process.exit(1)
  }
)
