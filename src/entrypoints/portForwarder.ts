/**
 * `node dist/portForwarder.cjs SPEC`: a service's published ports, detached
 * from the pyro process that started it (src/workspace/ports/forwarder.ts).
 * stdout carries one line of protocol to that process; logs go to stderr (a
 * file beside the workspace's port records).
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { appLayer } from "../layers/App.js"
import { stderrLogger } from "../layers/StderrLogger.js"
import { ProgressSilent } from "../services/Progress.js"
import { runForwarder } from "../workspace/ports/forwarder.js"
import { PortPair } from "../workspace/ports/registry.js"

const Spec = Schema.parseJson(Schema.Struct({
  workspaceId: Schema.String,
  serviceName: Schema.String,
  ports: Schema.Array(PortPair)
}))

const spec = Schema.decodeUnknownSync(Spec)(process.argv[2])
const runtime = ManagedRuntime.make(appLayer(ProgressSilent))
runtime.runPromise(runForwarder(spec).pipe(Effect.provide(stderrLogger(false)))).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`port forwarder: ${String(e)}\n`)
    process.exit(1)
  }
)
